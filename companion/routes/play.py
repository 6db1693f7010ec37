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
from companion.play import Play, score_summary
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
    # every bad entry is named at once, by position (`entries`, 0-based), so the page can mark them
    # and keep the rest as typed
    codes = [play.country_code(g) for g in body.guesses]
    unknown = [i for i, c in enumerate(codes) if c is None]
    if unknown:
        listed = ", ".join(repr(body.guesses[i]) for i in unknown)
        what = "country" if len(unknown) == 1 else "countries"
        raise ApiError(400, "bad_message", f"unknown {what} {listed}: type a name or an ISO code", entries=unknown)
    twice = [i for i, c in enumerate(codes) if c in codes[:i]]
    if twice:
        raise ApiError(400, "bad_message", f"{play.names[codes[twice[0]]]} is guessed twice", entries=twice)
    pred = await ctx.run(play.model_prediction, im)
    try:
        answer = await ctx.run(play.guess, body.round, codes, [c.code for c in pred.countries])
    except AlreadyAnswered:  # two answers to one round raced
        raise ApiError(409, "bad_message", "this round has been answered already") from None
    # the model's pin and cells, for the result map beside the truth
    return answer | {"model_point": pred.point.model_dump(), "model_cells": [c.model_dump() for c in pred.cells]}


@router.get("/scores")
async def scores(play: Game, ctx: Ctx, player: str | None = None):
    rows = await ctx.run(play.scores.rows, player)
    return score_summary(rows)
