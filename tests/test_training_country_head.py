"""The direct country head folded into the cell logits: the bundle stays `pixels → cell logits`, and
summing the served cell posterior per country gives the country head's own probabilities."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from paths import FIXTURES
from PIL import Image
from training_fixtures import tiny_config

from runtime.bundle import load_meta
from runtime.posterior import CellIndex, log_softmax
from runtime.preprocess import prepare as prepare_pixels
from training.checkpoint import load_trained
from training.export import export_bundle
from training.models import Head, HeadConfig
from training.prepare import prepare
from training.train import train

CELL_COUNTRY = [0, 0, 1, 2, 2, 2, 1]   # 7 cells in 3 countries


def _head(mix: float) -> Head:
    torch.manual_seed(0)
    return Head(16, len(CELL_COUNTRY), HeadConfig(hidden=8, dropout=0.0, country=True, country_mix=mix),
                CELL_COUNTRY).eval()


def _country_marginal(out: torch.Tensor) -> np.ndarray:
    onehot = np.eye(3)[CELL_COUNTRY]
    return np.exp(log_softmax(out.detach().double().numpy())) @ onehot


def test_folded_country_marginal_is_the_country_head():
    head = _head(0.0)
    x = torch.randn(5, 16) * 3
    cells, country = head.parts(x)
    out = head(x)
    assert out.shape == (5, len(CELL_COUNTRY))
    assert torch.logsumexp(out, 1).abs().max() < 1e-5  # already a normalized log-posterior
    np.testing.assert_allclose(_country_marginal(out), torch.softmax(country, 1).detach().numpy(), atol=1e-5)
    # within a country the cells keep the cell head's ranking and ratios
    same = [2, 6]
    np.testing.assert_allclose((out[:, same[0]] - out[:, same[1]]).detach().numpy(),
                               (cells[:, same[0]] - cells[:, same[1]]).detach().numpy(), atol=1e-5)


def test_mix_one_gives_the_cell_heads_own_marginal_and_no_underflow():
    head = _head(1.0)
    x = torch.randn(4, 16)
    cells, _ = head.parts(x)
    np.testing.assert_allclose(_country_marginal(head(x)), _country_marginal(torch.log_softmax(cells, 1)), atol=1e-5)
    # one country's cells 200 logits below the rest: still finite, the country head still decides
    head = _head(0.0)
    with torch.no_grad():
        head.net[-1].bias[[0, 1]] -= 200.0
    out = head(x)
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(_country_marginal(out), torch.softmax(head.parts(x)[1], 1).detach().numpy(),
                               atol=1e-5)


@pytest.mark.slow
def test_country_head_trains_exports_and_onnx_serves_its_probabilities(tiny_manifest, tiny_features,
                                                                       tmp_path):
    cfg = tiny_config(tiny_manifest, tiny_features, tmp_path / "run", country_balance=1.0,
                      head=HeadConfig(hidden=32, country=True, country_mix=0.25))
    prep = prepare(cfg)
    run = train(cfg, prep)
    model, _, _ = load_trained(run)
    assert model.head.country is not None and float(model.head.country_mix) == 0.25
    bundle = export_bundle(run, prep.ds, tmp_path / "bundle")
    meta = load_meta(bundle)
    index = CellIndex.from_meta(meta)
    x = prepare_pixels(Image.open(sorted(FIXTURES.glob("*.jpg"))[0]), meta.input.spec())
    logits = ort.InferenceSession(str(bundle / "model.onnx")).run(["logits"], {"pixels": x})[0]
    assert logits.shape == (len(x), len(meta.cells))
    with torch.inference_mode():
        cells, country = model.head.parts(model.backbone(torch.from_numpy(x)))
    mixed = torch.log_softmax(0.25 * torch.log_softmax(
        torch.logsumexp(cells[:, :, None] + torch.log(model.head.cell_country), 1), 1)
        + 0.75 * torch.log_softmax(country, 1), 1).exp().numpy()
    for row, want in zip(logits, mixed, strict=True):
        assert index.country_probs(np.exp(log_softmax(row.astype(np.float64)))) == pytest.approx(want, abs=1e-5)
