"""Geography for training and evaluation: haversine label smoothing and the metrics we report.

Distances use runtime.geo.haversine_km and every country/region/point answer comes from
runtime.posterior.CellIndex, so the numbers here are what the companion serves.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from runtime.geo import haversine_km
from runtime.posterior import GEOGUESSR_SCALE_KM, CellIndex, log_softmax, pool_log_probs

WITHIN_KM = (1, 25, 200, 750, 2500)
ECE_BINS = 15


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


def weighted_mean(x, w) -> float:
    return float(np.sum(np.asarray(x, np.float64) * w) / np.sum(w))


def weighted_median(x, w) -> float:
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(np.asarray(w, np.float64)[order])
    return float(np.asarray(x)[order][np.searchsorted(cum, cum[-1] / 2)])


def reliability(confidence, correct, weights=None, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error of the top answer and the reliability diagram's bins
    (equal-width in confidence; weighted when `weights` is given)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    w = np.ones_like(confidence) if weights is None else np.asarray(weights, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece, rows = 0.0, []
    for b in range(bins):
        m = which == b
        if not m.any() or w[m].sum() == 0:
            continue
        conf, acc, share = weighted_mean(confidence[m], w[m]), weighted_mean(correct[m], w[m]), w[m].sum() / w.sum()
        ece += share * abs(conf - acc)
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "confidence": conf, "accuracy": acc,
                     "share": float(share), "n": int(m.sum())})
    return float(ece), rows


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the true classes present of the per-class recall."""
    recalls = [float((pred[truth == c] == c).mean()) for c in np.unique(truth)]
    return float(np.mean(recalls)) if recalls else float("nan")


def predict_points(index: CellIndex, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The served pin (expected-score maximizer) of every row, in chunks to bound memory."""
    pts = [p for b in range(0, len(probs), 256) for p in index.points(probs[b:b + 256])]
    pts = np.array(pts) if pts else np.zeros((0, 2))
    return pts[:, 0], pts[:, 1]


METRIC_KEYS = ("country_top1", "country_top1_se", "country_top3", "country_top5", "country_top5_se",
               "country_balanced_acc", "region_top1", "region_top5", "cell_top1", "cell_top5", "median_km", "mean_km",
               "geoguessr_score", "geoguessr_score_se", "ece", "mean_confidence")


def image_outcomes(index: CellIndex, probs: np.ndarray, lat, lng, country: list[str]) -> dict[str, np.ndarray]:
    """Per image: the served pin's distance and GeoGuessr score, and whether the true country is first
    or in the top 5 (with the country marginal and the truth's index they come from)."""
    ci = {c: i for i, c in enumerate(index.country_codes)}
    c_true = np.array([ci.get(c, -1) for c in country])
    c_probs = index.country_probs(probs)
    plat, plng = predict_points(index, probs)
    km = haversine_km(np.asarray(lat, np.float64), np.asarray(lng, np.float64), plat, plng)
    return {"km": km, "score": geoguessr_score(km), "top1": topk_hit(c_probs, c_true, 1),
            "top5": topk_hit(c_probs, c_true, 5), "country_probs": c_probs, "country_true": c_true}


def paired_difference(a, b, weights, groups, draws: int = 2000, seed: int = 0) -> dict:
    """Weighted mean of b − a over the same images, with a 95% bootstrap interval that resamples whole
    groups (all views of a place together). Two models scored on the same images differ by far less
    noise than their separate intervals suggest, so this is what says whether a challenger won."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    w = np.asarray(weights, np.float64)
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    n = group.max() + 1
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(draws):
        pick = np.bincount(rng.integers(0, n, n), minlength=n)[group] * w
        if pick.sum() > 0:
            boots.append(np.sum(pick * d) / pick.sum())
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"diff": weighted_mean(d, w), "ci95": [float(lo), float(hi)]}


def evaluate_probs(index: CellIndex, probs: np.ndarray, lat, lng, country: list[str], region: list[str | None],
                   cell: np.ndarray, with_table: bool = True, weights: np.ndarray | None = None) -> dict:
    """All reported metrics for per-image cell probabilities [N, C] against the truth; with `weights`
    (e.g. the game's country mix over ours) every mean, the median and the ECE are weighted."""
    if len(probs) == 0 or (weights is not None and np.sum(weights) <= 0):
        # an empty part (e.g. a test split without yosshstd images) reports n = 0 and NaNs, not a crash
        empty = {k: math.nan for k in METRIC_KEYS} | {"n": len(probs), "n_eff": 0.0, "reliability": []}
        return empty | {f"within_{r}km": math.nan for r in WITHIN_KM} | ({"per_country": []} if with_table else {})
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    cell = np.asarray(cell)
    ri = {r: i for i, r in enumerate(index.region_codes)}
    r_true = np.array([ri.get(r, -1) if r else -1 for r in region])
    r_probs = probs @ index.cell_region
    o = image_outcomes(index, probs, lat, lng, country)
    c_probs, c_true, km, hit1, hit5 = o["country_probs"], o["country_true"], o["km"], o["top1"], o["top5"]
    c_pred = c_probs.argmax(axis=1)
    ece, bins = reliability(c_probs.max(axis=1), hit1, w)
    m = {
        "n": int(len(probs)),
        "n_eff": float(w.sum() ** 2 / (w ** 2).sum()),
        "country_top1": weighted_mean(hit1, w),
        "country_top1_se": weighted_se(hit1, w),
        "country_top3": weighted_mean(topk_hit(c_probs, c_true, 3), w),
        "country_top5": weighted_mean(hit5, w),
        "country_top5_se": weighted_se(hit5, w),
        "country_balanced_acc": balanced_accuracy(c_pred, c_true),
        "region_top1": weighted_mean(topk_hit(r_probs, r_true, 1), w),
        "region_top5": weighted_mean(topk_hit(r_probs, r_true, 5), w),
        "cell_top1": weighted_mean(topk_hit(probs, cell, 1), w),
        "cell_top5": weighted_mean(topk_hit(probs, cell, 5), w),
        "median_km": weighted_median(km, w),
        "mean_km": weighted_mean(km, w),
        "geoguessr_score": weighted_mean(o["score"], w),
        "geoguessr_score_se": weighted_se(o["score"], w),
        "ece": ece,
        "mean_confidence": weighted_mean(c_probs.max(axis=1), w),
        "reliability": bins,
    }
    for r in WITHIN_KM:
        m[f"within_{r}km"] = weighted_mean(km <= r, w)
    if with_table:
        m["per_country"] = per_country_table(country, c_pred, c_true, km, index)
    return m


def weighted_se(x, w) -> float:
    """Standard error of a weighted mean (the 95% interval is ±1.96 SE; n is small, so report it)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    m = weighted_mean(x, w)
    return float(np.sqrt(np.sum((w * (x - m)) ** 2)) / np.sum(w))


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
