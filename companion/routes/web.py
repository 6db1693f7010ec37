"""The web UI at `/` (static files are mounted by server.create_app)."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from companion.deps import Ctx

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, ctx: Ctx):
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    # the token goes only to a page that proved it has it (/?token=..., the URL `serve` prints): any
    # installed extension may fetch this page, and the page keeps the token in its own origin's storage
    token = ctx.settings.token if ctx.settings.token_ok(request.query_params.get("token")) else ""
    return HTMLResponse(page.replace("__LF_TOKEN__", html.escape(token, quote=True)),
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
