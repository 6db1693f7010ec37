"""`python -m training sweep`: head settings scored on validation only."""

import json

import pytest
from training_fixtures import tiny_config

from training.models import HeadConfig
from training.sweep import sweep

pytestmark = pytest.mark.slow  # real training runs: `make test`, not the edit loop


def test_sweep_scores_each_setting_and_mix_on_validation(tiny_manifest, tiny_features, tmp_path, capsys):
    cfg = tiny_config(tiny_manifest, tiny_features, tmp_path / "run", epochs=2,
                      head=HeadConfig(hidden=32, country=True))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": cfg.to_dict()}))
    rows = sweep(str(config), [{}, {"tau_km": 150.0}], [0.0, 1.0], out=str(tmp_path / "sweep"))
    assert [(r["override"], r["mix"]) for r in rows] == [({}, 0.0), ({}, 1.0), ({"tau_km": 150.0}, 0.0),
                                                          ({"tau_km": 150.0}, 1.0)]
    for r in rows:
        assert 0.0 <= r["country_top1"] <= r["country_top5"] <= 1.0
        assert r["median_km"] >= 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"override"')]
    assert printed == rows
    with pytest.raises(ValueError, match="changes backbone"):
        sweep(str(config), [{"backbone": "mobilenetv2_100"}], [0.0], out=str(tmp_path / "sweep2"))


def test_logistic_baseline_scores_countries_on_the_same_splits(tiny_manifest, tiny_features, tmp_path):
    import numpy as np

    from training.baseline import country_scores, logistic_baseline
    from training.data import load_dataset

    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    m = country_scores(probs, np.array([0, 1, 2]))
    assert m["country_top1"] == 2 / 3 and m["country_balanced_acc"] == 2 / 3 and m["country_top5"] == 1.0

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": tiny_config(tiny_manifest, tiny_features, tmp_path / "run").to_dict()}))
    report = logistic_baseline(str(config))
    ds = load_dataset(tiny_manifest)
    assert report["val"]["n"] == len(ds.split("val")) and report["test"]["n"] == len(ds.split("test"))
    for part in ("val", "test"):
        assert 0.0 <= report[part]["country_top1"] <= report[part]["country_top5"] <= 1.0


def test_compare_trains_scores_and_times_each_backbone(tiny_manifest, tiny_features, tmp_path):
    """`python -m training compare` on the fixtures: a country-head model per backbone, world-validation
    rows (game-weighted), and the whole exported graph's CPU latency."""
    from training.compare import compare

    cfg = tiny_config(tiny_manifest, tiny_features, tmp_path / "run", epochs=2,
                      head=HeadConfig(hidden=32, country=True, country_mix=0.75))
    d = cfg.to_dict()
    d.pop("backbone")
    config = tmp_path / "compare.json"
    config.write_text(json.dumps({"backbones": ["tf_efficientnet_lite0"], "features_dirs": [str(tiny_features)],
                                  "train": d}))
    results = compare(config, tmp_path / "out")
    r = results["tf_efficientnet_lite0"]
    assert 0 <= r["val"]["country_top1"] <= r["val"]["country_top5"] <= 1 and 0 <= r["val"]["ece"] <= 1
    assert r["latency_ms"] > 0 and r["params_m"] > 3
    assert "game-weighted" in (tmp_path / "out" / "compare.md").read_text()
