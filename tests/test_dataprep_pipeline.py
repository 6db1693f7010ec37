"""`python -m dataprep all` end to end: on the fixtures, and on ../shared (skipped when absent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dataprep_fixtures import COMMITTED, copy_pairs, fixture_ids, run_cli, tree_digest
from paths import FIXTURES, ROOT
from PIL import Image

from dataprep import cli
from dataprep.config import DataprepConfig
from runtime.dataset import load_tiles, tile_reader
from runtime.records import image_path, read_manifest

LABELS = ("country", "country_name", "adm1_code", "region", "cell", "split", "sha256")


@pytest.mark.parametrize("command", [c[0] for c in cli.COMMANDS])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args([command, "--help"])
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out


def _game_csv(path: Path) -> Path:
    """A made-up game map: the fixtures' places, the first ones three times as often."""
    pts = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    path.write_text("map,lat,lng\n" + "".join(f"t,{p['lat']},{p['lng']}\n" * (3 if i < 8 else 1)
                                               for i, p in enumerate(pts)))
    return path


def _config(tmp_path: Path, src: Path) -> Path:
    cfg = {
        "sources": [str(src)], "out": str(tmp_path / "out"), "artefacts": str(tmp_path / "art"),
        "boundaries": str(COMMITTED),
        "cells": {"min_samples": 3, "max_samples": 10},
        "prior": {"locations": str(_game_csv(tmp_path / "game.csv"))},
        "cache": {"size": 32}, "report": {"thumbnails": 4},
    }
    path = tmp_path / "dataprep.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.slow
def test_all_on_the_fixtures_is_complete_reproducible_and_checked(tmp_path):
    src = copy_pairs(tmp_path / "src")
    before = tree_digest(src)
    config = _config(tmp_path, src)
    r = run_cli("all", "--config", config)
    assert r.returncode == 0, r.stderr[-3000:]
    out, art = tmp_path / "out", tmp_path / "art"
    manifest = out / "manifest.jsonl"
    samples = list(read_manifest(manifest))
    assert len(samples) == 32
    assert all(getattr(s, f) is not None for s in samples for f in LABELS)
    assert all(image_path(s, manifest).is_file() for s in samples)
    cells = json.loads((out / "cells.geojson").read_text())
    n = len(cells["features"])
    assert {s.cell for s in samples} <= set(range(n))
    assert {s.country for s in samples if s.split == "train"} == {f["properties"]["country"] for f in cells["features"]}
    stats = json.loads((out / "stats.json").read_text())
    assert list(stats["stages"]) == ["ingest", "resize", "enrich", "filter", "split", "balance", "cells"]
    assert stats["stages"]["ingest"]["out"]["records"] == 32 and stats["final"]["countries"] == 25
    prior = json.loads((out / "prior.json").read_text())
    assert len(prior["cells"]) == n and sum(prior["cells"]) == pytest.approx(1, abs=1e-6)
    assert sum(prior["countries"].values()) == pytest.approx(1, abs=1e-5) and prior["points"] == 32 + 2 * 8
    # the stage run alone, from the published cells, derives the same prior
    r = run_cli("prior", "--in", manifest, "--cells", out / "cells.geojson", "--locations", tmp_path / "game.csv",
                "--out", tmp_path / "prior-alone.json", "--boundaries", COMMITTED)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "prior-alone.json").read_text())["cells"] == prior["cells"]
    # so does the cells stage, from the balanced manifest, with the config's settings as its options
    r = run_cli("cells", "--in", out / "06-balance.jsonl", "--out", tmp_path / "cells-alone.jsonl",
                "--cells", tmp_path / "cells-alone.geojson", "--boundaries", COMMITTED,
                "--min-samples", "3", "--max-samples", "10", "--simplify-deg", "0.05", "--seed", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "cells-alone.geojson").read_text())["features"] == cells["features"]
    assert [s.cell for s in read_manifest(tmp_path / "cells-alone.jsonl")] == [s.cell for s in samples]
    for name in ("datalist.txt", "cells.geojson", "stats.json", "prior.json", "report/report.html", "report/map.png",
                 "report/filters.png"):
        assert (art / name).is_file(), name
    tiles, index = load_tiles(stats["cache"]["folder"])
    assert tiles.shape[1:] == (32, 32, 3) and sorted(index["ids"]) == sorted(s.id for s in samples)
    assert tile_reader(manifest, 32) is not None  # published beside the manifest, where training looks
    first_manifest = manifest.read_bytes()
    datalist = (art / "datalist.txt").read_bytes()

    # a re-run reproduces the dataset byte for byte (and passes the data-list check)
    r = run_cli("all", "--config", config, "--no-cache", "--no-report")
    assert r.returncode == 0, r.stderr[-3000:]
    assert manifest.read_bytes() == first_manifest and (art / "datalist.txt").read_bytes() == datalist
    assert tree_digest(src) == before

    # changed inputs fail against the committed data-list, naming the records, and change nothing
    victim = fixture_ids()[5]
    Image.open(src / f"{victim}.jpg").save(src / f"{victim}.jpg", quality=50)
    (src / f"{fixture_ids()[7]}.json").unlink()
    r = run_cli("all", "--config", config, "--no-cache", "--no-report")
    assert r.returncode == 2  # bad input: runtime.cli
    assert victim in r.stderr and fixture_ids()[7] in r.stderr and "Traceback" not in r.stderr
    assert manifest.read_bytes() == first_manifest


def test_all_refuses_a_missing_boundaries_file_before_any_work(tmp_path):
    config = _config(tmp_path, FIXTURES)
    cfg = json.loads(config.read_text())
    cfg["boundaries"] = str(tmp_path / "missing.geojson.gz")
    config.write_text(json.dumps(cfg))
    r = run_cli("all", "--config", config)
    assert r.returncode == 2 and "boundaries file not found" in r.stderr
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        DataprepConfig.from_dict({"sources": [], "cells": {"min_sampels": 3}})
    bad = tmp_path / "bad.json"
    bad.write_text('{"sources": [], "colour": 1}')
    r = run_cli("all", "--config", bad)
    assert r.returncode == 2 and "unknown key" in r.stderr


@pytest.mark.shared
@pytest.mark.slow
def test_all_on_shared_reproduces_the_committed_datalist_and_cells(tmp_path):
    committed = ROOT / "datasets" / "streetview"
    cfg = DataprepConfig.load(committed / "dataprep.json")
    cfg.out = str(tmp_path / "out")
    cfg.artefacts = str(tmp_path / "art")
    cfg.cache.enabled = False
    cfg.report.enabled = False
    (tmp_path / "art").mkdir()
    shutil.copyfile(committed / "datalist.txt", tmp_path / "art" / "datalist.txt")  # checked, not rewritten
    config = tmp_path / "dataprep.json"
    config.write_text(cfg.to_json())
    r = run_cli("all", "--config", config)
    assert r.returncode == 0, r.stderr[-3000:]
    made = json.loads((tmp_path / "out" / "cells.geojson").read_text())
    assert made == json.loads((committed / "cells.geojson").read_text())
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    # streetview (9,006 images, 2,844 places) + extra/minipigeon (400, 100)
    assert stats["stages"]["ingest"]["out"] == {"records": 9406, "countries": 0, "locations": 2944}
    assert stats["stages"]["enrich"]["out"]["countries"] == 92
    # the game's prior, derived reproducibly: the committed one, cell for cell
    made_prior = json.loads((tmp_path / "out" / "prior.json").read_text())
    assert made_prior == json.loads((committed / "prior.json").read_text())
    assert made_prior["points"] == 60670 and len(made_prior["cells"]) == len(made["features"])
    # the world validation: non-US places at twice the US rate
    val = stats["stages"]["split"]["splits"]["val"]
    assert val["locations"] >= 400 and val["countries"] >= 60


@pytest.mark.parametrize(("command", "model"), [("resize", "ResizeConfig"), ("enrich", "EnrichConfig"),
                                                ("filter", "FilterConfig"), ("cells", "CellsConfig")])
def test_each_stage_takes_every_setting_of_its_config_with_the_same_default(command, model):
    import argparse

    from dataprep import config

    model = getattr(config, model)
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    defaults = {a.dest: a.default for a in sub._actions}
    assert {name: f.default for name, f in model.model_fields.items()} == {n: defaults[n] for n in model.model_fields}


def test_config_values_are_checked_with_the_field_named(capsys):
    with pytest.raises(ValueError, match="resize.max_side"):
        DataprepConfig.from_dict({"resize": {"max_side": 4}})
    assert cli.main(["resize", "--in", "m.jsonl", "--out", "o.jsonl", "--images", "i", "--max-side", "4"]) == 2
    assert "--max-side" in capsys.readouterr().err
