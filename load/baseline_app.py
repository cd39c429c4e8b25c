"""The naive verify endpoint that benchmarks compare against (never part of the product).

Written the obvious way: FastAPI with a pydantic body, a JWT (ES256) in the QR code decoded
with pyjwt, and `await redis.set(nx=True)` against replay. The public key is loaded once at
start into a key object, pyjwt's documented way (issue 18): passing the PEM text per request,
as the first version did, parsed the key on every request and made the baseline slower.
Run: `uvicorn load.baseline_app:app` with LOAD_BASELINE_KEY (PEM public key file) and
LOAD_REDIS_URL set; `load/bench_verify.py` starts it for you.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import jwt
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import BaseModel

with open(os.environ["LOAD_BASELINE_KEY"], "rb") as key_file:
    PUBLIC_KEY = serialization.load_pem_public_key(key_file.read())
REDIS_URL = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/0")
redis_client = aioredis.Redis.from_url(REDIS_URL)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await redis_client.aclose()


app = FastAPI(lifespan=lifespan)


class VerifyRequest(BaseModel):
    token: str
    scene: str | None = None


class VerifyResponse(BaseModel):
    verdict: str
    checked_at: datetime


@app.post("/v1/verify", response_model=VerifyResponse)
async def verify(body: VerifyRequest) -> VerifyResponse:
    now = datetime.now(UTC)
    try:
        claims = jwt.decode(body.token, PUBLIC_KEY, algorithms=["ES256"])
    except jwt.ExpiredSignatureError:
        return VerifyResponse(verdict="expired", checked_at=now)
    except jwt.PyJWTError:
        return VerifyResponse(verdict="bad_signature", checked_at=now)
    first = await redis_client.set(f"baseline:jti:{claims['jti']}", 1, nx=True, ex=120)
    return VerifyResponse(verdict="valid" if first else "replayed", checked_at=now)
