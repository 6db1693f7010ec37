"""The served posterior: the game's prior, the temperature and the expected-score pin, against hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.bundle import Cell, CellRegion
from runtime.geo import haversine_km
from runtime.posterior import GEOGUESSR_SCALE_KM, CellIndex, calibrate, log_softmax
from training.calibration import fit_temperature, log_adjustment, train_prior
from training.evaluate import game_weights
from training.geo import reliability


def _cell(i: int, country: str, points: list[tuple[float, float]]) -> Cell:
    lat, lng = np.mean([p[0] for p in points]), np.mean([p[1] for p in points])
    return Cell(id=i, country=country, lat=lat, lng=lng, regions=[CellRegion(code=f"{country}-{i}", weight=1)],
                points=points)


def _index(cells: list[Cell]) -> CellIndex:
    countries = sorted({c.country for c in cells})
    return CellIndex.from_cells(cells, countries, [f"{c.country}-{c.id}" for c in cells])


def test_prior_correction_by_hand():
    # model 0.5 / 0.3 / 0.2, trained on a 60/30/10 mix, served to a game that is 20/40/40:
    # p ∝ p_model · π_game / π_train = (0.5·⅓, 0.3·4/3, 0.2·4) = (0.1667, 0.4, 0.8) → / 1.3667
    adj = log_adjustment(np.array([0.2, 0.4, 0.4]), np.array([0.6, 0.3, 0.1]))
    got = np.exp(calibrate(np.log([0.5, 0.3, 0.2]), 1.0, adj))
    want = np.array([0.5 / 3, 0.4, 0.8])
    np.testing.assert_allclose(got, want / want.sum(), rtol=1e-9)
    # the temperature then tempers the corrected posterior: p ∝ (p_model · π_game / π_train)^(1/T)
    got = np.exp(calibrate(np.log([0.5, 0.3, 0.2]), 2.0, adj))
    want = np.sqrt(np.array([0.5, 0.3, 0.2]) * np.array([1 / 3, 4 / 3, 4]))
    np.testing.assert_allclose(got, want / want.sum(), rtol=1e-9)
    # no prior, T = 1: unchanged
    np.testing.assert_allclose(np.exp(calibrate(np.log([0.5, 0.3, 0.2]))), [0.5, 0.3, 0.2])


def test_the_temperature_acts_on_the_country_marginal_and_keeps_the_ranking():
    # country A has three cells of 0.2 (0.6), B one of 0.4: a cell temperature would lift A's many cells
    # further; tempering the country marginal keeps A first and p(cell | country) as it was
    lp = np.log([0.2, 0.2, 0.2, 0.4])
    countries = np.array([0, 0, 0, 1])
    got = np.exp(calibrate(lp, 3.0, None, countries))
    pa, pb = 0.6 ** (1 / 3), 0.4 ** (1 / 3)
    np.testing.assert_allclose(got, [pa / 3 / (pa + pb)] * 3 + [pb / (pa + pb)], rtol=1e-9)
    # whatever T, the countries' order stays; a huge gap does not underflow
    far = np.log(np.array([1e-300, 1e-300, 1.0 - 2e-300, 1e-300]) + 0)
    out = calibrate(far, 0.5, None, np.array([0, 1, 1, 2]))
    assert np.isfinite(out).all() and np.exp(out).sum() == pytest.approx(1)
    rows = np.log(np.random.default_rng(1).dirichlet(np.ones(6), 50))
    g = np.array([0, 0, 1, 2, 2, 2])
    for t in (0.5, 2.0, 5.0):
        before, after = np.exp(rows) @ np.eye(3)[g], np.exp(calibrate(rows, t, None, g)) @ np.eye(3)[g]
        assert (before.argmax(1) == after.argmax(1)).all()


def test_train_prior_is_the_weighted_target_mix():
    targets = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # weights 2, 1, 1: (2·1 + 0.5, 0.5 + 1) / 4
    np.testing.assert_allclose(train_prior(targets, np.array([2.0, 1.0, 1.0])), [2.5 / 4, 1.5 / 4])


def test_game_weights_give_the_game_mix():
    class S:
        def __init__(self, country):
            self.country = country

    samples = [S("US")] * 8 + [S("BR")] * 2
    w = game_weights(samples, {"US": 0.1, "BR": 0.9})
    # weighted shares are the game's: US 8·w_US / 10 = 0.1
    assert w[:8].sum() / w.sum() == pytest.approx(0.1) and w.mean() == pytest.approx(1)
    # a country the game never visits weighs nothing; no prior: all 1
    assert game_weights([S("XX"), S("US")], {"US": 1.0})[0] == 0
    np.testing.assert_array_equal(game_weights(samples, None), np.ones(10))


def test_temperature_fitted_on_an_overconfident_model_lowers_ece():
    rng = np.random.default_rng(0)
    cells = [_cell(i, f"C{i}", [(0.0, 10.0 * i)]) for i in range(10)]
    index = _index(cells)
    n = 3000
    truth = rng.integers(0, 10, n)
    # an honest model: logits whose softmax is right as often as it says; then made over-confident (×3)
    logits = rng.normal(0, 1, (n, 10))
    logits[np.arange(n), truth] += 1.0
    honest = log_softmax(logits)
    sampled = np.array([rng.choice(10, p=np.exp(r)) for r in honest])   # truth drawn from the honest posterior
    over = log_softmax(3 * honest)
    t = fit_temperature(over, index, sampled)
    assert 2.4 < t < 3.6   # the inflation is undone
    before = reliability(np.exp(over).max(1), np.exp(over).argmax(1) == sampled)[0]
    cal = np.exp(calibrate(over, t))
    after = reliability(cal.max(1), cal.argmax(1) == sampled)[0]
    assert before > 0.15 and after < 0.03


def test_the_pin_goes_to_the_heavier_of_two_far_modes_not_the_ocean_between():
    # Portugal-ish and Brazil-ish places; the plain average of the two lies in the Atlantic
    lisbon, recife = (38.7, -9.1), (-8.05, -34.9)
    cells = [_cell(0, "PT", [lisbon, (41.15, -8.6)]), _cell(1, "BR", [recife, (-12.97, -38.5)])]
    index = _index(cells)
    lat, lng = index.point(np.array([0.4, 0.6]))
    assert (lat, lng) in cells[1].points
    lat, lng = index.point(np.array([0.7, 0.3]))
    assert (lat, lng) in cells[0].points


def test_the_pin_maximizes_the_expected_score_by_hand():
    # three places on the equator in one cell each; mass 0.45 / 0.1 / 0.45 at 0°, 1°, 2° of longitude:
    # the middle place scores 0.1 + 0.9·e^(−d1/σ), an end 0.45 + 0.1·e^(−d1/σ) + 0.45·e^(−d2/σ)
    cells = [_cell(i, "AA", [(0.0, 1.0 * i)]) for i in range(3)]
    index = _index(cells)
    d1, d2 = haversine_km(0, 0, 0, 1), haversine_km(0, 0, 0, 2)
    middle = 0.1 + 0.9 * math.exp(-d1 / GEOGUESSR_SCALE_KM)
    end = 0.45 + 0.1 * math.exp(-d1 / GEOGUESSR_SCALE_KM) + 0.45 * math.exp(-d2 / GEOGUESSR_SCALE_KM)
    assert middle > end
    assert index.point(np.array([0.45, 0.1, 0.45])) == (0.0, 1.0)
    # 5° apart the ends win: each keeps its own mass whole
    far = _index([_cell(i, "AA", [(0.0, 5.0 * i)]) for i in range(3)])
    assert far.point(np.array([0.46, 0.1, 0.44])) == (0.0, 0.0)
    d10 = haversine_km(0, 0, 0, 10)
    # a cell's answer may be anywhere among its places: the kernel is their mean
    two = _index([_cell(0, "AA", [(0.0, 0.0), (0.0, 10.0)])])
    assert two.kernel[0, 0] == pytest.approx((1 + math.exp(-d10 / GEOGUESSR_SCALE_KM)) / 2)


def test_the_pin_lies_in_one_of_the_top_three_countries():
    # three countries around a fourth, tiny one (~450 km from each): its centre is the unconstrained
    # optimum, but the list shows only the top three, so the pin must be in one of them
    cells = [_cell(0, "AA", [(4.0, 0.0)]), _cell(1, "BB", [(-2.0, 3.46)]), _cell(2, "CC", [(-2.0, -3.46)]),
             _cell(3, "DD", [(0.0, 0.0)])]
    index = _index(cells)
    probs = np.array([0.33, 0.33, 0.32, 0.02])
    unconstrained = int(np.argmax(index.kernel @ probs))
    assert index.cand_cell[unconstrained] == 3
    lat, lng = index.point(probs)
    assert (lat, lng) in [(4.0, 0.0), (-2.0, 3.46), (-2.0, -3.46)]
