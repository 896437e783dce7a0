"""The HTTP API: FastAPI routers over the capabilities, nothing more."""

from vigila.api.app import create_app

__all__ = ["create_app"]
