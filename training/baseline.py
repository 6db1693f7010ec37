"""The floor to beat: a logistic-regression country classifier on the same frozen features and splits.

No geocells, no label smoothing, no pooling rule beyond averaging an image's tile features: if the
default model does not beat this on val/test and on the world-spread part, its head is not earning
its keep. Scores countries only (the baseline has no cells, regions or points).
"""

from __future__ import annotations

import numpy as np

from training.config import DefaultConfig
from training.evaluate import WORLD_SPREAD_SOURCE, game_weights
from training.geo import balanced_accuracy, topk_hit, weighted_mean


def image_features(prep, samples) -> np.ndarray:
    rows, owner = prep.cache.rows([s.id for s in samples])
    feats = np.asarray(prep.cache.features[rows], np.float64)
    out = np.zeros((len(samples), feats.shape[1]))
    np.add.at(out, owner, feats)
    return out / np.bincount(owner, minlength=len(samples))[:, None]


def country_scores(probs: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None) -> dict:
    if len(truth) == 0:
        return {"n": 0}
    w = np.ones(len(truth)) if weights is None else weights
    return {"n": int(len(truth)), "country_top1": weighted_mean(topk_hit(probs, truth, 1), w),
            "country_top5": weighted_mean(topk_hit(probs, truth, 5), w),
            "country_balanced_acc": balanced_accuracy(probs.argmax(1), truth)}


def logistic_baseline(config: str, c: float = 1.0, class_weight: str | None = None) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from training.prepare import prepare

    cfg = DefaultConfig.load(config)
    prep = prepare(cfg.warmup or cfg.train)   # the frozen features: the warm-up head's when there is one
    codes = [c_.code for c_ in prep.ds.countries]
    index = {code: i for i, code in enumerate(codes)}
    train = prep.ds.split("train")
    x_train = image_features(prep, train)
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=c, max_iter=3000, class_weight=class_weight, random_state=0)
    clf.fit(scaler.transform(x_train), [index[s.country] for s in train])
    out = {}
    for split in ("val", "test"):
        samples = prep.ds.split(split)
        proba = np.zeros((len(samples), len(codes)))
        proba[:, clf.classes_] = clf.predict_proba(scaler.transform(image_features(prep, samples)))
        truth = np.array([index.get(s.country, -1) for s in samples])
        out[split] = country_scores(proba, truth)
        out[f"{split}_game"] = country_scores(proba, truth, game_weights(samples, prep.country_prior))
        if split == "test":
            spread = np.array([WORLD_SPREAD_SOURCE in s.source for s in samples])
            out["test_yosshstd"] = country_scores(proba[spread], truth[spread])
    return out
