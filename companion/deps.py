"""What every route depends on: the app's shared state, the token check, bounded bodies, errors.

Routes take these through FastAPI's `Depends`; an `ApiError` raised anywhere becomes the protocol's
`ErrorMessage` with its HTTP status (server.create_app installs the handler).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from companion import protocol as P
from companion.engine import Engine
from companion.settings import Settings


class ApiError(Exception):
    """An HTTP error: the protocol's ErrorMessage, plus any `fields` the route documents (Play's `entries`)."""

    def __init__(self, status: int, code: str, message: str, **fields):
        super().__init__(message)
        self.status, self.code, self.fields = status, code, fields

    def body(self) -> dict:
        return P.ErrorMessage(code=self.code, message=str(self)).model_dump() | self.fields


@dataclass
class Context:
    """One app's engine, settings, worker threads and turns at the model."""

    engine: Engine
    settings: Settings
    pool: ThreadPoolExecutor
    # turns at the model, first come first served; a connection waits for one turn at a time, so
    # every connection gets its share however many frames it sends
    turns: asyncio.Semaphore

    async def run(self, fn, *args):
        """fn(*args) on a worker thread: decoding, the model and SQLite would stall the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def context(request: Request) -> Context:
    return request.app.state.lf


Ctx = Annotated[Context, Depends(context)]


def request_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    return token or request.headers.get("x-lf-token") or request.query_params.get("token")


def require_token(request: Request, ctx: Ctx) -> None:
    """The pairing token, checked before the body is read: an unauthenticated body is never parsed."""
    if not ctx.settings.token_ok(request_token(request)):
        raise ApiError(401, "unauthorized", "missing or wrong pairing token")


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused past `limit` bytes (declared or sent) or `timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"body is {declared} bytes, the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise ApiError(413, "too_large", f"body is over {limit} bytes")
    except TimeoutError:
        raise ApiError(408, "bad_message", f"the body took more than {timeout:g} s") from None
    except ClientDisconnect:
        raise ApiError(400, "bad_message", "the client left before sending the whole body") from None
    return bytes(body)


async def read_json(request: Request, model: type[BaseModel], timeout: float):
    """A small JSON body as `model` (None when empty)."""
    body = await read_body(request, P.MAX_JSON_BODY, timeout)
    if not body.strip():
        return None
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise ApiError(400, "bad_message", f"invalid body: {first_error(e)}") from None


def first_error(e: ValidationError | RequestValidationError, where: str = "message") -> str:
    """`loc: msg` of a validation error's first error (`where` when it has no location)."""
    err = e.errors()[0] if e.errors() else {}
    loc = ".".join(str(x) for x in err.get("loc", ())) or where
    return f"{loc}: {err.get('msg', 'invalid')}"
