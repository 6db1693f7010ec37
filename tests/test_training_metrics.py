"""The metric functions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.bundle import BundleMeta, Cell, CellRegion, Country, InputMeta, Region
from runtime.geo import EARTH_RADIUS_KM, haversine_km
from runtime.posterior import CellIndex
from training.geo import (
    balanced_accuracy,
    evaluate_probs,
    geoguessr_score,
    pooled_log_probs,
    reliability,
    smoothed_targets,
    topk_hit,
    weighted_median,
)


def test_haversine_known_distances():
    # one degree of longitude on the equator is 2πR/360
    assert haversine_km(0, 0, 0, 1) == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360, rel=1e-9)
    # antipodes: half the circumference
    assert haversine_km(10, 20, -10, -160) == pytest.approx(math.pi * EARTH_RADIUS_KM, rel=1e-7)
    # Paris (48.8566, 2.3522) – London (51.5074, −0.1278): 343.5 km on a sphere of radius 6371 km
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=0.5)
    assert haversine_km(33.3, -111.9, 33.3, -111.9) == 0


def test_geoguessr_score_formula():
    assert geoguessr_score(0) == 5000
    assert geoguessr_score(1492.7) == round(5000 / math.e)  # 1839
    assert geoguessr_score(1492.7 * math.log(2)) == 2500
    assert geoguessr_score(20000) == 0  # 5000·e^(−13.4) = 0.0076
    assert list(geoguessr_score([0, 100])) == [5000, round(5000 * math.exp(-100 / 1492.7))]


def test_label_smoothing_sums_to_one_and_prefers_the_true_cell():
    cell_lat, cell_lng = np.array([0.0, 0.0, 0.0, 50.0]), np.array([0.0, 1.0, 5.0, 100.0])
    q = smoothed_targets([0.1, 49.0], [0.2, 99.0], [0, 3], cell_lat, cell_lng, tau_km=70)
    assert q.shape == (2, 4)
    np.testing.assert_allclose(q.sum(1), 1, rtol=1e-6)
    assert q[0].argmax() == 0 and q[1].argmax() == 3
    # by hand: q_j ∝ exp(−(d_j − d_true)/τ)
    d = haversine_km(0.1, 0.2, cell_lat, cell_lng)
    want = np.exp(-(d - d[0]) / 70)
    np.testing.assert_allclose(q[0], want / want.sum(), rtol=1e-5, atol=1e-30)
    assert q[0, 1] > q[0, 2] > q[0, 3]  # nearer cells get more mass
    # τ → 0 is one-hot
    assert smoothed_targets([0.1], [0.2], [0], cell_lat, cell_lng, tau_km=1e-3)[0, 0] == pytest.approx(1)


def test_topk_and_balanced_accuracy():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    truth = np.array([2, 0, 1])
    assert topk_hit(scores, truth, 1).tolist() == [False, True, False]
    assert topk_hit(scores, truth, 2).tolist() == [True, True, True]
    assert topk_hit(scores, np.array([-1, -1, -1]), 3).tolist() == [False] * 3
    # classes 0: 2/2 right, 1: 0/1, 2: 1/3 → (1 + 0 + 1/3) / 3
    pred, true = np.array([0, 0, 2, 2, 0, 1]), np.array([0, 0, 1, 2, 2, 2])
    assert balanced_accuracy(pred, true) == pytest.approx((1 + 0 + 1 / 3) / 3)


def test_pooling_is_the_mean_log_probability_per_image():
    logits = np.log(np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]))
    out = np.exp(pooled_log_probs(logits, np.array([0, 0, 1]), 2))
    g = np.sqrt(np.array([0.5 * 0.9, 0.5 * 0.1]))
    np.testing.assert_allclose(out[0], g / g.sum())
    np.testing.assert_allclose(out[1], [0.2, 0.8])


def _index() -> CellIndex:
    meta = BundleMeta(
        model_id="t", created="", backbone="x", input=InputMeta(size=8, mean=(0, 0, 0), std=(1, 1, 1)),
        countries=[Country(code="AA", name="A"), Country(code="BB", name="B")],
        regions=[Region(code="A-1", name="a1", country="AA"), Region(code="A-2", name="a2", country="AA"),
                 Region(code="B-1", name="b1", country="BB")],
        cells=[Cell(id=0, country="AA", lat=0, lng=0, regions=[CellRegion(code="A-1", weight=1)]),
               Cell(id=1, country="AA", lat=0, lng=2, regions=[CellRegion(code="A-2", weight=1)]),
               Cell(id=2, country="BB", lat=40, lng=40, regions=[CellRegion(code="B-1", weight=1)])],
    )
    return CellIndex.from_meta(meta)


def test_evaluate_probs_by_hand():
    index = _index()
    probs = np.array([[0.6, 0.3, 0.1],    # truth cell 0 at (0, 0): right
                      [0.2, 0.2, 0.6],    # truth cell 1 at (0, 2): country wrong, AA second
                      [0.1, 0.1, 0.8]])   # truth cell 2 at (40, 40): right, exactly on the centroid
    m = evaluate_probs(index, probs, [0, 0, 40], [0, 2, 40], ["AA", "AA", "BB"], ["A-1", "A-2", "B-1"],
                       np.array([0, 1, 2]))
    assert m["country_top1"] == pytest.approx(2 / 3)
    assert m["country_top3"] == 1.0
    assert m["country_balanced_acc"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["region_top1"] == pytest.approx(2 / 3) and m["cell_top1"] == pytest.approx(2 / 3)
    d_miss = haversine_km(0, 2, 40, 40)
    assert m["median_km"] == pytest.approx(0.0) and m["mean_km"] == pytest.approx(d_miss / 3)
    assert m["within_1km"] == pytest.approx(2 / 3)
    assert m["geoguessr_score"] == pytest.approx((5000 + geoguessr_score(d_miss) + 5000) / 3)
    table = {r["country"]: r for r in m["per_country"]}
    assert table["AA"]["n"] == 2 and table["AA"]["top1"] == 0.5 and table["AA"]["predicted_as"] in ("AA", "BB")


def test_an_empty_part_reports_n_0_with_the_same_keys():
    index = _index()
    full = evaluate_probs(index, np.array([[0.6, 0.3, 0.1]]), [0], [0], ["AA"], ["A-1"], np.array([0]))
    empty = evaluate_probs(index, np.zeros((0, 3)), [], [], [], [], np.zeros(0, int))
    assert empty["n"] == 0 and set(empty) == set(full) and empty["per_country"] == []
    assert math.isnan(empty["country_top1"]) and math.isnan(empty["within_25km"])


def test_weighted_metrics_by_hand():
    index = _index()
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])
    args = ([0, 0, 40], [0, 2, 40], ["AA", "AA", "BB"], ["A-1", "A-2", "B-1"], np.array([0, 1, 2]))
    # weights 1, 3, 0: the miss counts three times, the third image not at all
    m = evaluate_probs(index, probs, *args, with_table=False, weights=np.array([1.0, 3.0, 0.0]))
    assert m["country_top1"] == pytest.approx(1 / 4)
    d_miss = haversine_km(0, 2, 40, 40)
    assert m["median_km"] == pytest.approx(d_miss) and m["mean_km"] == pytest.approx(3 * d_miss / 4)
    assert m["n"] == 3 and m["n_eff"] == pytest.approx(16 / 10)
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0])) == 3.0


def test_reliability_and_ece_by_hand():
    # two bins: 0.9 shown, right 1 time in 2 (gap 0.4); 0.25 shown, right 1 time in 4 (gap 0)
    conf = np.array([0.9, 0.9, 0.25, 0.25, 0.25, 0.25])
    right = np.array([1, 0, 1, 0, 0, 0])
    ece, bins = reliability(conf, right)
    assert ece == pytest.approx(2 / 6 * 0.4)
    assert [round(b["accuracy"], 3) for b in bins] == [0.25, 0.5]
    assert sum(b["share"] for b in bins) == pytest.approx(1)


def test_paired_difference_resamples_places_not_views():
    from training.geo import paired_difference

    rng = np.random.default_rng(1)
    a = rng.normal(1000, 300, 200)
    same = paired_difference(a, a, np.ones(200), np.arange(200))
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0]
    shifted = paired_difference(a, a + 50, np.ones(200), np.arange(200))
    assert shifted["diff"] == pytest.approx(50) and shifted["ci95"] == pytest.approx([50, 50])

    # a small, noisy gain; each place seen in 5 views: resampling views as if independent overstates certainty
    gain = 20 + rng.normal(0, 100, 200)
    b = a + gain
    views = lambda x: np.repeat(x, 5)  # noqa: E731
    by_place = paired_difference(views(a), views(b), np.ones(1000), views(np.arange(200)))
    by_view = paired_difference(views(a), views(b), np.ones(1000), np.arange(1000))
    assert by_place["diff"] == pytest.approx(by_view["diff"]) == pytest.approx(gain.mean())
    width = lambda r: r["ci95"][1] - r["ci95"][0]  # noqa: E731
    assert width(by_place) > 1.8 * width(by_view)
    assert by_place["ci95"][0] < gain.mean() < by_place["ci95"][1]
    # weights count: a place with weight 0 does not move the estimate
    w = np.ones(200)
    w[0] = 0
    assert paired_difference(a, b, w, np.arange(200))["diff"] == pytest.approx(gain[1:].mean())
