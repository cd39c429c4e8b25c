"""The API's own documentation: `/openapi.json` and Swagger UI at `/docs`, its scripts and
styles served from the `fastapi-swagger` package (no CDN: the page works offline and tells
no third party who reads it). Only mounted when SSC_EXPOSE_DOCS (see `Settings.docs_exposed`).

Plain API routes, so `/metrics` labels them by their path like every other route.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from app.errors import NotFound

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files of Swagger UI's distribution the page loads, and their media types."""

router = APIRouter(include_in_schema=False)


def swagger_ui_directory() -> Path:
    return Path(str(files("fastapi_swagger") / "resources"))


@router.get(OPENAPI_PATH)
async def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_PATH,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
    )


@router.get(ASSETS_PATH + "/{name}")
async def swagger_ui_asset(name: str) -> FileResponse:
    media_type = SWAGGER_UI_ASSETS.get(name)
    if media_type is None:
        raise NotFound("no such documentation asset")
    return FileResponse(
        swagger_ui_directory() / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
