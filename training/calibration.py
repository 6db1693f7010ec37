"""Honest confidence and the game's prior: what turns the model's pooled log-probabilities into the
probabilities the companion shows (`runtime.posterior.calibrate`), fitted on the world validation.

- π_train(cell): the mix the loss taught, the weighted mean of the smoothed training targets (our data is
  48% US, weighted by country^-balance); π_game(cell): dataprep's prior.json. Their log-ratio is the
  logit adjustment p(cell | x) ∝ p_model(cell | x) · π_game(cell) / π_train(cell).
- The temperature T tempers the country marginal (`calibrate`) and minimizes the (game-weighted) negative
  log-likelihood of the true country with the adjustment applied: countries are what the player reads.
"""

from __future__ import annotations

import numpy as np

from runtime.posterior import CellIndex, calibrate

T_GRID = np.exp(np.linspace(np.log(0.2), np.log(10.0), 81))


def train_prior(targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """π_train [C]: the weighted mean of the training targets (soft, rows sum to 1), as the loss sees it."""
    w = np.asarray(weights, np.float64)
    p = (np.asarray(targets, np.float64) * w[:, None]).sum(0) / w.sum()
    return p / p.sum()


def log_adjustment(game_prior: np.ndarray, train_prior_: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """log π_game − log π_train, both floored so that no cell becomes impossible or explodes."""
    g = np.maximum(np.asarray(game_prior, np.float64), floor)
    t = np.maximum(np.asarray(train_prior_, np.float64), floor)
    return np.log(g / g.sum()) - np.log(t / t.sum())


def country_nll(log_probs: np.ndarray, index: CellIndex, truth: np.ndarray, weights: np.ndarray,
                temperature: float, log_adjust: np.ndarray | None) -> float:
    """Weighted mean −log p(true country) after calibration; truth −1 (a country without cells) is skipped."""
    pc = index.country_probs(np.exp(calibrate(log_probs, temperature, log_adjust, index.cell_country)))
    ok = truth >= 0
    nll = -np.log(np.maximum(pc[ok, truth[ok]], 1e-12))
    w = np.asarray(weights, np.float64)[ok]
    return float((nll * w).sum() / w.sum())


def fit_temperature(log_probs: np.ndarray, index: CellIndex, truth: np.ndarray, weights: np.ndarray | None = None,
                    log_adjust: np.ndarray | None = None) -> float:
    """The temperature with the least country NLL: a coarse log-grid, then golden-section around its best."""
    log_probs = np.asarray(log_probs, np.float64)
    w = np.ones(len(log_probs)) if weights is None else np.asarray(weights, np.float64)
    nll = [country_nll(log_probs, index, truth, w, t, log_adjust) for t in T_GRID]
    i = int(np.argmin(nll))
    lo, hi = np.log(T_GRID[max(0, i - 1)]), np.log(T_GRID[min(len(T_GRID) - 1, i + 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if country_nll(log_probs, index, truth, w, np.exp(a), log_adjust) < country_nll(log_probs, index, truth, w,
                                                                                          np.exp(b), log_adjust):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))
