"""Geography for training and evaluation: haversine label smoothing and the metrics we report.

Distances use companion.posterior.haversine_km and every country/region/point answer comes from
companion.posterior.CellIndex, so the numbers here are what the companion serves.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from companion.posterior import CellIndex, haversine_km, log_softmax, pool_log_probs

GEOGUESSR_SCALE_KM = 1492.7
WITHIN_KM = (1, 25, 200, 750, 2500)


def geoguessr_score(km) -> np.ndarray:
    """GeoGuessr's world-map score for a guess `km` away: round(5000·exp(−d/1492.7))."""
    return np.round(5000 * np.exp(-np.asarray(km, np.float64) / GEOGUESSR_SCALE_KM))


def smoothed_targets(lat, lng, cell, cell_lat, cell_lng, tau_km: float) -> np.ndarray:
    """PIGEON's haversine label smoothing: soft targets over cells, float32 [N, C], rows sum to 1.

    q_j ∝ exp(−(d(x, c_j) − d(x, c_true)) / τ): the true cell gets the most mass, nearby cells
    some, far cells none, so a near miss costs less than a guess on the wrong continent.
    """
    lat, lng, cell = np.asarray(lat), np.asarray(lng), np.asarray(cell)
    d = haversine_km(lat[:, None], lng[:, None], cell_lat[None, :], cell_lng[None, :])
    d_true = d[np.arange(len(cell)), cell][:, None]
    logits = -(d - d_true) / tau_km
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def pooled_log_probs(logits: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per-image log-probabilities from per-tile logits (owner[i] = image of tile row i), pooled as
    the companion pools the tiles of a frame."""
    lp = log_softmax(np.asarray(logits, np.float64))
    out = np.empty((n, lp.shape[1]))
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n + 1))
    for i in range(n):
        out[i] = pool_log_probs(lp[order[bounds[i]:bounds[i + 1]]])
    return out


def topk_hit(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Whether truth[i] is among the k highest scores of row i (truth −1: never)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (top == truth[:, None]).any(axis=1) & (truth >= 0)


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the true classes present of the per-class recall."""
    recalls = [float((pred[truth == c] == c).mean()) for c in np.unique(truth)]
    return float(np.mean(recalls)) if recalls else float("nan")


def predict_points(index: CellIndex, probs: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([index.point(p, radius_km) for p in probs]) if len(probs) else np.zeros((0, 2))
    return pts[:, 0], pts[:, 1]


METRIC_KEYS = ("country_top1", "country_top3", "country_top5", "country_balanced_acc", "region_top1", "region_top5",
               "cell_top1", "cell_top5", "median_km", "mean_km", "geoguessr_score")


def evaluate_probs(index: CellIndex, probs: np.ndarray, lat, lng, country: list[str], region: list[str | None],
                   cell: np.ndarray, radius_km: float, with_table: bool = True) -> dict:
    """All reported metrics for per-image cell probabilities [N, C] against the truth."""
    if len(probs) == 0:
        # an empty part (e.g. a test split without yosshstd images) reports n = 0 and NaNs, not a crash
        empty = {k: math.nan for k in METRIC_KEYS} | {"n": 0, "point_radius_km": radius_km}
        return empty | {f"within_{r}km": math.nan for r in WITHIN_KM} | ({"per_country": []} if with_table else {})
    lat, lng, cell = np.asarray(lat, np.float64), np.asarray(lng, np.float64), np.asarray(cell)
    ci = {c: i for i, c in enumerate(index.country_codes)}
    ri = {r: i for i, r in enumerate(index.region_codes)}
    c_true = np.array([ci.get(c, -1) for c in country])
    r_true = np.array([ri.get(r, -1) if r else -1 for r in region])
    c_probs = np.stack([index.country_probs(p) for p in probs])
    r_probs = probs @ index.cell_region
    plat, plng = predict_points(index, probs, radius_km)
    km = haversine_km(lat, lng, plat, plng)
    c_pred = c_probs.argmax(axis=1)
    m = {
        "n": int(len(probs)),
        "country_top1": float(topk_hit(c_probs, c_true, 1).mean()),
        "country_top3": float(topk_hit(c_probs, c_true, 3).mean()),
        "country_top5": float(topk_hit(c_probs, c_true, 5).mean()),
        "country_balanced_acc": balanced_accuracy(c_pred, c_true),
        "region_top1": float(topk_hit(r_probs, r_true, 1).mean()),
        "region_top5": float(topk_hit(r_probs, r_true, 5).mean()),
        "cell_top1": float(topk_hit(probs, cell, 1).mean()),
        "cell_top5": float(topk_hit(probs, cell, 5).mean()),
        "median_km": float(np.median(km)),
        "mean_km": float(np.mean(km)),
        "geoguessr_score": float(geoguessr_score(km).mean()),
        "point_radius_km": radius_km,
    }
    for r in WITHIN_KM:
        m[f"within_{r}km"] = float((km <= r).mean())
    if with_table:
        m["per_country"] = per_country_table(country, c_pred, c_true, km, index)
    return m


def per_country_table(country: list[str], c_pred, c_true, km, index: CellIndex) -> list[dict]:
    rows = defaultdict(list)
    for n, c in enumerate(country):
        rows[c].append(n)
    table = []
    for c, idx in sorted(rows.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        idx = np.asarray(idx)
        table.append({
            "country": c,
            "n": int(len(idx)),
            "top1": float((c_pred[idx] == c_true[idx]).mean()),
            "median_km": float(np.median(km[idx])),
            "predicted_as": _most_common([index.country_codes[p] for p in c_pred[idx]]),
        })
    return table


def _most_common(items: list[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for i in items:
        counts[i] += 1
    return max(sorted(counts), key=lambda k: counts[k])


def tune_radius(index: CellIndex, probs: np.ndarray, lat, lng,
                grid=(0.0, 100, 200, 400, 800, 1600, 2400, 3200, 5000)) -> float:
    """The point-estimate radius with the best mean GeoGuessr score (call on validation only)."""
    best, best_score = grid[0], -math.inf
    for r in grid:
        plat, plng = predict_points(index, probs, r)
        score = geoguessr_score(haversine_km(lat, lng, plat, plng)).mean()
        if score > best_score:
            best, best_score = r, score
    return float(best)
