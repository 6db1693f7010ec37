"""The committed default bundle: loadable by the companion's code, small enough, honest metadata."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from paths import FIXTURES
from PIL import Image

from companion.config import DEFAULT_BUNDLE
from runtime.bundle import load_meta
from runtime.posterior import CellIndex, calibrate, log_softmax, pool_log_probs
from runtime.preprocess import prepare

REQUIRED = ["country_top1", "country_top5", "country_balanced_acc", "region_top1", "cell_top1", "median_km",
            "mean_km", "within_25km", "within_2500km", "geoguessr_score", "ece", "n_eff"]


@pytest.fixture(scope="module")
def meta():
    if not (DEFAULT_BUNDLE / "bundle.json").is_file():
        pytest.skip("no default bundle built yet (python -m training default)")
    return load_meta(DEFAULT_BUNDLE)


def test_default_bundle_is_small_and_records_test_metrics(meta):
    size = sum(p.stat().st_size for p in DEFAULT_BUNDLE.iterdir())
    assert size <= 30 * 1024 * 1024
    for part in ("val", "test"):
        for view in ("all", "game"):
            assert all(k in meta.metrics[part][view] for k in REQUIRED), (part, view)
        assert {"shenran", "hunterprice", "yosshstd", "minipigeon"} <= set(meta.metrics[part]["per_source"])
    assert "test_yosshstd" in meta.metrics and meta.metrics["per_country_val"]
    # served with the World map's prior by default, calibrated; "none" for other maps
    assert meta.prior == "world" and set(meta.calibrations) == {"none", "world"}
    assert all(0.2 < c.temperature < 10 for c in meta.calibrations.values())
    assert all(c.points for c in meta.cells)
    assert meta.datalist_sha256 and len(meta.cells) == len({c.id for c in meta.cells})


def test_default_bundle_answers_for_real_images(meta):
    sess = ort.InferenceSession(str(DEFAULT_BUNDLE / "model.onnx"), providers=["CPUExecutionProvider"])
    index = CellIndex.from_meta(meta)
    for path in sorted(FIXTURES.glob("*.jpg"))[:4]:
        x = prepare(Image.open(path), meta.input.spec())
        cal = meta.calibrations[meta.prior]
        lp = pool_log_probs(log_softmax(sess.run(["logits"], {"pixels": x})[0]))
        probs = np.exp(calibrate(lp, cal.temperature, np.asarray(cal.log_adjust), index.cell_country))
        assert probs.shape == (len(meta.cells),) and probs.sum() == pytest.approx(1, abs=1e-6)
        assert index.region_probs(probs).sum() == pytest.approx(1, abs=1e-6)
        # the pin is one of the cells' training places, in one of the three countries the list shows first
        lat, lng = index.point(probs)
        m = np.flatnonzero((index.cand_lat == lat) & (index.cand_lng == lng))
        top3 = np.argsort(-index.country_probs(probs))[:3]
        assert len(m) and index.cell_country[index.cand_cell[m[0]]] in top3


@pytest.mark.slow
def test_every_candidate_pin_is_on_land_in_its_cells_country(meta):
    """The served pin is always one of these places: each lies in (or within 20 km of the coast of) its
    cell's country by Natural Earth's admin-1 polygons, so no pin can fall in the sea between two modes."""
    from dataprep import boundaries
    from dataprep.config import EnrichConfig
    from dataprep.enrich import Locator

    gdf = boundaries.load(None)
    index = CellIndex.from_meta(meta)
    row, _ = Locator(gdf, EnrichConfig(max_km=20.0)).locate(index.cand_lat, index.cand_lng)
    assert (row >= 0).all()
    found = np.asarray(gdf["country"].values)[row]
    want = np.asarray(index.country_codes)[index.cell_country[index.cand_cell]]
    assert (found == want).mean() >= 0.99   # a border place may fall just across: never the sea
