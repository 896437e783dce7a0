"""The ASGI entry point uvicorn imports: settings from the environment."""

from vigila.api.app import create_app
from vigila.core import Settings

app = create_app(Settings.from_env())
