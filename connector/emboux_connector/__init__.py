"""EmBoux connector: the REST API in front of the mail DB."""

from .app import create_app

__all__ = ["create_app"]
