"""split, balance, cells and the data-list on synthetic records placed in real admin-1 regions."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from dataprep_fixtures import admin1, run_cli

from dataprep import balance, cells, datalist, split
from dataprep.config import CellsConfig, SplitConfig
from dataprep.enrich import enrich
from runtime.records import Sample, write_manifest


def _points(country_boxes: dict[str, tuple[float, float, float, float, int]], views: int = 2, seed: int = 0) -> list[Sample]:
    """`views` records per location at random points of a lat/lng box per country, enriched for real."""
    rng = random.Random(seed)
    out = []
    for tag, (la0, la1, ln0, ln1, n) in country_boxes.items():
        for k in range(n):
            lat, lng = rng.uniform(la0, la1), rng.uniform(ln0, ln1)
            for v in range(views):
                out.append(Sample(f"{tag}-{k:04d}-{v}", "x.jpg", lat, lng, f"{tag}:{k}", "synthetic", sha256=f"{k:064x}"))
    labelled, _ = enrich(out, admin1())
    return labelled


@pytest.fixture(scope="module")
def world():
    return _points({
        "us": (33.0, 45.0, -120.0, -85.0, 400),   # big: k-means splits
        "fr": (44.0, 49.0, 0.0, 5.0, 60),
        "jp": (34.0, 36.0, 135.0, 140.0, 12),
        "nz": (-45.0, -38.5, 170.0, 176.0, 2),    # too few locations for val/test
    })


def test_split_is_location_disjoint_stable_and_stratified(world):
    a = split.split(world)
    side = {}
    for s in a:
        assert side.setdefault(s.location, s.split) == s.split  # all views of a location on one side
    shuffled = list(world)
    random.Random(3).shuffle(shuffled)
    assert {s.id: s.split for s in split.split(shuffled)} == {s.id: s.split for s in a}
    counts = {k: sum(1 for v in side.values() if v == k) for k in ("train", "val", "test")}
    assert 0.06 < counts["test"] / len(side) < 0.14 and 0.06 < counts["val"] / len(side) < 0.14
    for c in {s.country for s in a if s.country != "NZ"}:
        assert {"train", "val", "test"} <= {s.split for s in a if s.country == c}, c
    assert {s.split for s in a if s.country == "NZ"} == {"train"}
    # another salt draws another split; a dropped location does not move the others (outside fix-ups)
    other = split.split(world, SplitConfig(salt="other"))
    assert [s.split for s in other] != [s.split for s in a]
    fewer = split.split([s for s in world if s.location != "us:0000"])
    moved = [s.id for s in fewer if s.split != next(t.split for t in a if t.id == s.id)]
    assert moved == []


def test_a_country_can_have_its_own_val_fraction(world):
    """The world validation: more of the rare countries' places, fewer of the US's; test stays where it was."""
    base = split.split(world, SplitConfig(val=0.1))
    world_val = split.split(world, SplitConfig(val=0.3, val_by_country={"US": 0.05}))

    def share(samples, country, side):
        locs = {s.location: s.split for s in samples if s.country == country}
        return sum(v == side for v in locs.values()) / len(locs)

    assert share(world_val, "FR", "val") > 0.2 and share(world_val, "US", "val") < 0.09
    assert {s.id for s in base if s.split == "test"} == {s.id for s in world_val if s.split == "test"}
    with pytest.raises(ValueError, match="sum below 1"):
        split.assign(world, SplitConfig(val=0.1, test=0.1, val_by_country={"US": 0.95}))


def test_balance_caps_drops_rare_and_follows_weights(world, tmp_path):
    s = split.split(world)
    out, drops, info = balance.balance(s, slack=1.5)
    train = [x for x in s if x.split == "train"]
    cap = int(1.5 * len(train) / 4)
    us_after = sum(1 for x in out if x.split == "train" and x.country == "US")
    assert info["capped"]["US"]["after"] == us_after <= cap
    assert info["kept"] == sorted({x.country for x in train}) and info["dropped"] == []
    assert [x for x in out if x.split != "train"] == [x for x in s if x.split != "train"]  # val/test untouched
    assert all("above its cap" in d.reason for d in drops)
    kept_locations = {x.location for x in out if x.country == "US"}
    assert all(x.location in kept_locations for x in out if x.country == "US")  # whole locations
    # min share drops a country everywhere; a weights file steers the targets
    out2, drops2, info2 = balance.balance(s, min_share=0.01)
    assert info2["dropped"] == ["NZ"] and not any(x.country == "NZ" for x in out2)
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"US": 1, "FR": 1, "JP": 0, "NZ": 1}))
    out3, _, info3 = balance.balance(s, balance.load_weights(w), slack=2)
    assert "JP" in info3["dropped"] and not any(x.country == "JP" and x.split == "train" for x in out3)
    w.write_text('["US"]')
    with pytest.raises(ValueError, match="non-negative numbers"):
        balance.load_weights(w)


def test_cells_follow_the_contract(world):
    s = split.split(world)
    train = [x for x in s if x.split == "train"]
    cs = cells.build(train, admin1(), CellsConfig(min_samples=20, max_samples=100))
    feats = cs.features
    assert [f["properties"]["id"] for f in feats] == list(range(len(feats)))
    region_country = dict(zip(admin1()["adm1_code"], admin1()["country"], strict=True))
    total = 0
    for f in feats:
        p = f["properties"]
        assert set(p) == {"id", "country", "country_name", "regions", "lat", "lng", "count"}
        assert all(region_country[r["code"]] == p["country"] for r in p["regions"])  # never across a border
        assert abs(sum(r["weight"] for r in p["regions"]) - 1) < 1e-4
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        total += p["count"]
    assert total == len(train)
    us = [f for f in feats if f["properties"]["country"] == "US"]
    assert len(us) >= len([x for x in train if x.country == "US"]) / 100  # split above M
    per_country = {}
    for f in feats:
        per_country.setdefault(f["properties"]["country"], []).append(f["properties"]["count"])
    for c, counts in per_country.items():  # merged up to N unless the country has fewer
        assert len(counts) == 1 or min(counts) >= 20 or max(counts) > 100, (c, counts)
    out, how = cells.assign_all(s, cs)
    assert set(how) <= {"region", "country-nearest", "nearest"} and how["region"] > 0.95 * len(s)
    for x in out:
        cell = feats[x.cell]["properties"]
        assert cell["country"] == x.country or x.country not in per_country
    # the centroid is the centroid of the cell's train points
    f0 = feats[0]["properties"]
    pts = [x for x in cells.assign_all(train, cs)[0] if x.cell == 0]
    assert len(pts) == f0["count"]
    assert abs(np.mean([x.lat for x in pts]) - f0["lat"]) < 0.5


def test_cells_assign_points_of_countries_without_train_to_the_nearest_cell(world):
    s = split.split(world)
    train = [x for x in s if x.split == "train" and x.country != "JP"]
    cs = cells.build(train, admin1(), CellsConfig(min_samples=20, max_samples=100))
    jp = next(x for x in s if x.country == "JP")
    cid, how = cs.assign(jp)
    assert how == "nearest" and cs.features[cid]["properties"]["country"] in {"US", "FR", "NZ"}


def test_datalist_is_byte_reproducible_and_names_differences(world, tmp_path):
    text = datalist.render(world)
    shuffled = list(world)
    random.Random(1).shuffle(shuffled)
    assert datalist.render(shuffled) == text
    path = tmp_path / "datalist.txt"
    datalist.write_or_check(world, path, check=True)  # absent: written
    datalist.write_or_check(shuffled, path, check=True)  # same: passes
    changed = [x.with_(sha256="f" * 64) if x.id == "fr-0003-1" else x for x in world if x.id != "jp-0001-0"]
    changed.append(world[0].with_(id="zz-new"))
    with pytest.raises(datalist.DatalistMismatch) as e:
        datalist.write_or_check(changed, path, check=True)
    msg = str(e.value)
    assert "jp-0001-0" in msg and "zz-new" in msg and "fr-0003-1" in msg and "missing" in msg
    # the CLI: exit 1 with the message, no traceback
    m = tmp_path / "m.jsonl"
    write_manifest(m, changed)
    r = run_cli("datalist", "--in", m, "--check", path)
    assert r.returncode == 2 and "jp-0001-0" in r.stderr and "Traceback" not in r.stderr
    write_manifest(m, world)
    assert run_cli("datalist", "--in", m, "--check", path).returncode == 0
