"""The HTTP API (`folio serve`): see folio.api.app.create_app."""

from folio.api.app import create_app

__all__ = ["create_app"]
