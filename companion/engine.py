"""The model at runtime: a bundle's ONNX graph on ONNX Runtime (CPU), frames → `Prediction`.

Preprocessing is `runtime.preprocess` and the geography is `runtime.posterior`, the same code
training evaluates with, so the companion answers exactly what the model card measured.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort

from companion.protocol import CONFIDENT_P, LIKELY_P, CellP, CountryP, Point, Prediction, RegionP
from runtime.bundle import load_meta
from runtime.cli import BadInput
from runtime.posterior import CellIndex, calibrate, log_softmax, pool_log_probs
from runtime.preprocess import MAX_PIXELS, decode_image, prepare


def confidence_of(p_top: float) -> str:
    return "confident" if p_top >= CONFIDENT_P else "likely" if p_top >= LIKELY_P else "unsure"


DEFAULT_THREADS = min(2, os.cpu_count() or 1)  # the companion shares the player's machine with the game


class Engine:
    def __init__(self, bundle_dir: Path | str, threads: int = DEFAULT_THREADS, prior: str | None = None):
        self.bundle_dir = Path(bundle_dir)
        self.meta = load_meta(self.bundle_dir)
        self.prior = prior or self.meta.prior
        if self.prior not in self.meta.calibrations:
            raise BadInput(f"prior {self.prior!r}: this bundle has {', '.join(sorted(self.meta.calibrations))}")
        cal = self.meta.calibrations[self.prior]
        self.temperature = cal.temperature
        self.log_adjust = None if cal.log_adjust is None else np.asarray(cal.log_adjust, np.float64)
        self.spec = self.meta.input.spec()
        self.index = CellIndex.from_meta(self.meta)
        self.country_names = {c.code: c.name for c in self.meta.countries}
        self.regions = self.meta.regions
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: the cores are shared with the game, and spinning threads
        # doubled the CPU time of a 2-tile frame here (99 vs 48 ms, efficientnet-lite0, 2 threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.bundle_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        # one run at a time: the intra-op threads already use the cores, two runs would thrash them
        self._run_lock = threading.Lock()
        self.warm_up()

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    @cached_property
    def cells_geojson(self) -> dict:
        path = self.bundle_dir / "cells.geojson"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"type": "FeatureCollection", "features": []}

    def warm_up(self) -> None:
        """First runs allocate and pick kernels; do it now, not on the player's first frame."""
        s = self.spec.size
        for n in (1, 2, 2):  # a square image gives one tile, a 16:9 frame two
            self._run(np.zeros((n, 3, s, s), np.float32))

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        with self._run_lock:
            return self.session.run(["logits"], {"pixels": pixels})[0]

    def frame_log_probs(self, data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """Image bytes → cell log-probabilities [C], the image's tiles pooled. Raises ImageError."""
        pixels = prepare(decode_image(data, max_pixels, min_side=self.spec.size), self.spec)
        return pool_log_probs(log_softmax(self._run(pixels).astype(np.float64)))

    def prediction(self, log_probs: np.ndarray, top_k: int = 5, top_cells: int = 64, **fields) -> Prediction:
        """Pooled cell log-probabilities → the calibrated answer the player sees (fields: round, frame, frames,
        latency_ms)."""
        probs = np.exp(calibrate(log_probs, self.temperature, self.log_adjust, self.index.cell_country))
        probs /= probs.sum()
        cp = self.index.country_probs(probs)
        rp = self.index.region_probs(probs)
        codes = self.index.country_codes
        countries = [
            CountryP(code=codes[i], name=self.country_names.get(codes[i], codes[i]), p=float(cp[i]))
            for i in np.argsort(-cp, kind="stable")[:top_k]
        ]
        regions = [
            RegionP(code=self.regions[i].code, name=self.regions[i].name, country=self.regions[i].country, p=float(rp[i]))
            for i in np.argsort(-rp, kind="stable")[:top_k]
        ]
        cells = [CellP(id=int(i), p=float(probs[i])) for i in np.argsort(-probs, kind="stable")[:top_cells]]
        lat, lng = self.index.point(probs)
        fields.setdefault("latency_ms", 0.0)
        return Prediction(countries=countries, confidence=confidence_of(float(cp.max())), regions=regions,
                          point=Point(lat=lat, lng=lng), cells=cells, model=self.model_id, **fields)


class RoundPool:
    """The frames of each round so far, for one connection: a bounded LRU of running sums.

    Pooling is the mean of the frames' log-probabilities (`posterior.pool_log_probs`), so a running
    sum and a count are all a round needs, however many frames it gets.
    """

    def __init__(self, max_rounds: int = 8):
        self.max_rounds = max_rounds
        self._rounds: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()

    def add(self, round_id: str, log_probs: np.ndarray) -> tuple[np.ndarray, int]:
        total, n = self._rounds.pop(round_id, (np.zeros_like(log_probs), 0))
        total, n = total + log_probs, n + 1
        self._rounds[round_id] = (total, n)
        while len(self._rounds) > self.max_rounds:
            self._rounds.popitem(last=False)
        return pool_log_probs((total / n)[None]), n

    def reset(self, round_id: str | None = None) -> None:
        if round_id is None:
            self._rounds.clear()
        else:
            self._rounds.pop(round_id, None)

    def __len__(self) -> int:
        return len(self._rounds)
