"""The two yardsticks of `make bench`, kept minimal on purpose: nothing here is ours.

- `hello`: a bare FastAPI app answering `{"status": "ok"}` — what `/healthz` is measured against.
- `jwt_get`: a bare FastAPI app that verifies an HS256 JWT (joserfc, as the API does, on every
  request) and answers the bytes of one `redis.asyncio` GET — what the cached project list is
  measured against.

Run one with `uvicorn bench.baselines:hello` or `uvicorn bench.baselines:jwt_get`, with
`BENCH_REDIS_URL` and `BENCH_JWT_SECRET` set for the second.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from redis.asyncio import Redis

PAGE_KEY = "bench:page"

hello = FastAPI()


@hello.get("/")
async def say_hello() -> dict[str, str]:
    return {"status": "ok"}


@asynccontextmanager
async def _redis(app: FastAPI) -> AsyncIterator[None]:
    app.state.redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    app.state.key = OctKey.import_key(os.environ["BENCH_JWT_SECRET"].encode())
    yield
    await app.state.redis.aclose()


jwt_get = FastAPI(lifespan=_redis)


@jwt_get.get("/page")
async def page(request: Request, authorization: Annotated[str, Header()]) -> Response:
    try:
        token = jwt.decode(authorization.removeprefix("Bearer "), request.app.state.key)
    except (JoseError, ValueError) as exc:
        raise HTTPException(401) from exc
    value = await request.app.state.redis.get(f"{PAGE_KEY}:{token.claims['sub']}")
    return Response(value, media_type="application/json")
