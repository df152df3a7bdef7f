"""What routes receive: the process's one FolioService and its settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from folio.service import FolioService
from folio.settings import Settings


def get_service(request: Request) -> FolioService:
    service: FolioService = request.app.state.service
    return service


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Service = Annotated[FolioService, Depends(get_service)]
Config = Annotated[Settings, Depends(get_settings)]
