"""HTTP caching for published documents (keys, status lists, trust lists): strong ETag from
the content, `304 Not Modified` on a matching `If-None-Match`.
"""

from __future__ import annotations

import hashlib

from fastapi import Request
from starlette.responses import Response


def cacheable_response(request: Request, body: bytes, media_type: str, *, max_age: int) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    candidates = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in candidates or "*" in candidates:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
