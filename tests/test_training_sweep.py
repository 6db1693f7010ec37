"""`python -m training sweep`: head settings scored on validation only."""

import json

from training_fixtures import tiny_config, tiny_features, tiny_manifest  # noqa: F401

from training.models import HeadConfig
from training.sweep import sweep


def test_sweep_scores_each_setting_and_mix_on_validation(tiny_manifest, tiny_features, tmp_path, capsys):  # noqa: F811
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
    assert len(capsys.readouterr().out.strip().splitlines()[-4:]) == 4
