"""The ASGI entry point uvicorn imports: settings from the environment."""

import os

from vigila.api.app import create_app, settle_heap
from vigila.core import Settings

# VIGILA_RECORD=1 (set by `vigila serve --record`): this process records too.
app = create_app(Settings.from_env(), record=os.environ.get("VIGILA_RECORD") == "1")
settle_heap()
