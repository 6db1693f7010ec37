"""The Play HTTP API `/v1/play/*` (the web UI's Play tab drives it; writes need the pairing token).

Bodies are read only after the token check (the `require_token` dependency): an unauthenticated
body of any size is never parsed. Errors are the protocol's `ErrorMessage`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from companion import protocol as P
from companion.deps import ApiError, Ctx, read_json, require_token
from companion.play import Play, top_k_hits
from companion.scores import AlreadyAnswered

router = APIRouter(prefix="/v1/play")


def game(request: Request) -> Play:
    return request.app.state.play


Game = Annotated[Play, Depends(game)]


@router.get("/countries")
async def countries(play: Game):
    return [{"code": c, "name": n} for c, n in sorted(play.names.items(), key=lambda kv: kv[1])]


@router.post("/round", dependencies=[Depends(require_token)])
async def new_round(request: Request, play: Game, ctx: Ctx):
    body = await read_json(request, P.NewRound, ctx.settings.body_timeout) or P.NewRound()
    try:
        return await ctx.run(play.new_round, body.player)
    except LookupError as e:
        raise ApiError(404, "bad_message", str(e)) from None


@router.get("/image/{round_id}")
async def image(round_id: str, play: Game, ctx: Ctx):
    im = await ctx.run(play.image_of, round_id)
    if im is None:
        raise ApiError(404, "bad_message", f"no round {round_id!r}")
    return FileResponse(im.path)


@router.post("/guess", dependencies=[Depends(require_token)])
async def guess(request: Request, play: Game, ctx: Ctx):
    body = await read_json(request, P.Guess, ctx.settings.body_timeout)
    if body is None:
        raise ApiError(400, "bad_message", 'the body is {"round": ROUND, "guesses": [COUNTRY, ...]}')
    im = await ctx.run(play.image_of, body.round)
    if im is None:
        raise ApiError(404, "bad_message", f"no round {body.round!r}")
    if await ctx.run(play.scores.answered, body.round):
        raise ApiError(409, "bad_message", "this round has been answered already")
    codes = []
    for g in body.guesses:
        code = play.country_code(g)
        if code is None:
            raise ApiError(400, "bad_message", f"unknown country {g!r}: type a name or an ISO code")
        if code in codes:
            raise ApiError(400, "bad_message", f"{play.names[code]} is guessed twice")
        codes.append(code)
    model_guesses = await ctx.run(play.model_countries, im)
    try:
        return await ctx.run(play.guess, body.round, codes, model_guesses)
    except AlreadyAnswered:  # two answers to one round raced
        raise ApiError(409, "bad_message", "this round has been answered already") from None


@router.get("/scores")
async def scores(play: Game, ctx: Ctx, player: str | None = None):
    rows = await ctx.run(play.scores.rows, player)
    return {"rounds": len(rows), "human": top_k_hits(rows, "guesses"), "model": top_k_hits(rows, "model_guesses")}
