"""The committed default bundle: loadable by the companion's code, small enough, honest metadata."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from training_fixtures import FIXTURES

from companion.bundle import DEFAULT_BUNDLE, load_meta
from companion.posterior import CellIndex, log_softmax, pool_log_probs
from companion.preprocess import prepare

REQUIRED = ["country_top1", "country_top5", "country_balanced_acc", "region_top1", "cell_top1", "median_km",
            "mean_km", "within_25km", "within_2500km", "geoguessr_score"]


@pytest.fixture(scope="module")
def meta():
    if not (DEFAULT_BUNDLE / "bundle.json").is_file():
        pytest.skip("no default bundle built yet (python -m training default)")
    return load_meta(DEFAULT_BUNDLE)


def test_default_bundle_is_small_and_records_test_metrics(meta):
    size = sum(p.stat().st_size for p in DEFAULT_BUNDLE.iterdir())
    assert size <= 30 * 1024 * 1024
    assert meta.metrics["split"] == "test" and all(k in meta.metrics for k in REQUIRED)
    assert "test_yosshstd" in meta.metrics and meta.metrics["per_country"]
    assert meta.datalist_sha256 and len(meta.cells) == len({c.id for c in meta.cells})


def test_default_bundle_answers_for_real_images(meta):
    sess = ort.InferenceSession(str(DEFAULT_BUNDLE / "model.onnx"), providers=["CPUExecutionProvider"])
    index = CellIndex.from_meta(meta)
    for path in sorted(FIXTURES.glob("*.jpg"))[:4]:
        x = prepare(Image.open(path), meta.input.spec())
        probs = np.exp(pool_log_probs(log_softmax(sess.run(["logits"], {"pixels": x})[0])))
        assert probs.shape == (len(meta.cells),) and probs.sum() == pytest.approx(1, abs=1e-6)
        assert index.region_probs(probs).sum() == pytest.approx(1, abs=1e-6)
