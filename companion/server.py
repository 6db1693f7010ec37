"""The companion's FastAPI app: websocket `/ws`, HTTP `/v1/*`, the web UI at `/`.

`create_app` wires the parts: the shared state (deps.Context) on app.state, the Host/Origin gate
(settings.Settings) in front of everything, the protocol's error envelope for every HTTP error,
and one router per area (companion.routes).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from companion import protocol as P
from companion.deps import ApiError, Context, first_error
from companion.engine import Engine
from companion.play import Play
from companion.routes import api, play, web, ws
from companion.settings import Settings


def create_app(engine: Engine, settings: Settings, game: Play | None = None) -> FastAPI:
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="lf-infer")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="Lost & Found companion", version=str(P.PROTOCOL_VERSION), docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.lf = Context(engine, settings, pool, asyncio.Semaphore(settings.workers))
    app.state.play = game

    app.add_middleware(
        CORSMiddleware,
        allow_origin_regex=r"^(chrome|moz|safari-web)-extension://[A-Za-z0-9._-]+$",
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "X-LF-Token", "Content-Type"],
    )

    @app.middleware("http")
    async def gate(request: Request, call_next):
        if not settings.host_ok(request.headers.get("host")):
            return _error(403, "unauthorized", "Host is not a loopback name")
        if not settings.origin_ok(request.headers.get("origin")):
            return _error(403, "unauthorized", "this Origin may not use the companion")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, e: RequestValidationError):
        return _error(400, "bad_message", first_error(e, "request"))

    app.include_router(api.router)
    app.include_router(ws.router)
    app.include_router(web.router)
    if game is not None:
        app.include_router(play.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    return app


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(P.ErrorMessage(code=code, message=message).model_dump(), status_code=status)
