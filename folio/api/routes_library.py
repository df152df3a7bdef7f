"""Collections, documents and search: the bodies are the CLI's --json objects."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import JSONResponse

from folio.api.calls import call
from folio.api.deps import Service
from folio.api.schemas import COLLECTION, ERROR_RESPONSES, CollectionBody, SearchBody
from folio.service import Upload

router = APIRouter(tags=["documents"], responses=ERROR_RESPONSES)

CollectionQuery = Annotated[
    str | None,
    Query(pattern=COLLECTION, description="collection name (default: the configured one)"),
]


@router.post("/v1/search", summary="The chunks closest to a query (`folio search --json`)")
async def search(body: SearchBody, service: Service) -> dict[str, Any]:
    return await call(
        service.search, body.collection, body.query, k=body.k, mode=body.mode, source=body.source
    )


@router.get("/v1/documents", summary="The documents of a collection (`folio sources --json`)")
async def list_documents(service: Service, collection: CollectionQuery = None) -> dict[str, Any]:
    return await call(service.sources, collection)


@router.post(
    "/v1/documents",
    summary="Upload and ingest files (`folio ingest --json`); the collection is created if new",
)
async def upload_documents(
    service: Service,
    files: Annotated[list[UploadFile], File(description="one or more files (parts named files)")],
    collection: CollectionQuery = None,
) -> dict[str, Any]:
    """Each bad file (unsupported type, traversal or hidden name, too big, empty, broken) is
    listed in `failed` with its reason while the others go in."""
    uploads = [Upload(name=f.filename or "", data=await f.read()) for f in files]
    result = await call(service.upload, collection, uploads)
    report: dict[str, Any] = result.report.to_json()
    return report


@router.delete(
    "/v1/documents",
    summary="Remove documents (`folio remove --json`)",
    responses={404: {"description": "a path matches no document; nothing was removed"}},
)
async def remove_documents(
    service: Service,
    path: Annotated[
        list[str],
        Query(min_length=1, description="a stored path (as GET lists it) or a folder of them"),
    ],
    collection: CollectionQuery = None,
) -> dict[str, Any]:
    """All or nothing: when any path matches no document, nothing is removed (404)."""
    return await call(service.remove, collection, path, all_or_nothing=True)


@router.get("/v1/collections", summary="Collections with their document and chunk counts")
async def list_collections(service: Service) -> dict[str, Any]:
    return {"collections": await call(service.collections)}


@router.post(
    "/v1/collections",
    status_code=201,
    summary="Create a collection (201; 200 when it already exists)",
)
async def create_collection(body: CollectionBody, service: Service) -> JSONResponse:
    created = await call(service.create_collection, body.name)
    found = await call(service.collections)
    info = next(
        (c for c in found if c["name"] == body.name),
        {"name": body.name, "documents": 0, "chunks": 0},
    )
    return JSONResponse(info, status_code=201 if created else 200)
