"""`/v1/health`, `/v1/model`, `POST /v1/predict`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from companion import protocol as P
from companion.deps import Ctx, read_body, require_token
from companion.frames import FrameError, log_probs_of

router = APIRouter(prefix="/v1")


@router.get("/health", response_model=P.Health)
async def health(ctx: Ctx):
    return P.Health(model=ctx.engine.model_id)


@router.get("/model", response_model=P.ModelInfo)
async def model(ctx: Ctx):
    e, m = ctx.engine, ctx.engine.meta
    return P.ModelInfo(model=m.model_id, backbone=m.backbone, created=m.created, input=m.input, countries=m.countries,
                       regions=m.regions, metrics=m.metrics, cells=e.cells_geojson, prior=e.prior,
                       priors=sorted(m.calibrations), temperature=e.temperature)


@router.post("/predict", dependencies=[Depends(require_token)])
async def predict(request: Request, ctx: Ctx, top_k: int | None = Query(None, ge=1, le=P.MAX_TOP_K)):
    t0 = time.perf_counter()
    s = ctx.settings
    body = await read_body(request, s.max_frame_bytes, s.body_timeout)

    def answer():
        return ctx.engine.prediction(log_probs_of(ctx.engine, body, s.max_pixels), top_k=top_k or s.top_k,
                                     top_cells=s.top_cells)

    try:
        async with ctx.turns:
            pred = await ctx.run(answer)
    except FrameError as e:
        return JSONResponse(e.error.model_dump(), status_code=413 if e.error.code == "too_large" else 400)
    pred.latency_ms = round((time.perf_counter() - t0) * 1000, 3)
    return Response(pred.model_dump_json(), media_type="application/json")
