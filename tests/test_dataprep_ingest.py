"""ingest: the three input layouts, collector pairs, and every kind of bad record."""

from __future__ import annotations

import csv
import json
import shutil

from dataprep_fixtures import copy_pairs, fixture_ids, run_cli, sidecar, tree_digest
from paths import FIXTURES
from PIL import Image

from dataprep.ingest import ingest
from runtime.files import file_sha256 as sha256_file
from runtime.records import read_manifest


def test_pair_folder_reads_every_fixture_with_its_fields():
    samples, drops = ingest([FIXTURES])
    assert drops == []
    assert [s.id for s in samples] == fixture_ids()
    first = samples[0]
    meta = sidecar(first.id)
    assert (first.lat, first.lng, first.location, first.source) == (meta["lat"], meta["lng"], meta["location"], meta["source"])
    assert first.sha256 == sha256_file(FIXTURES / f"{first.id}.jpg")
    assert first.heading is None and first.country is None and first.split is None


def test_three_layouts_and_collector_pairs(tmp_path):
    ids = fixture_ids()
    pairs = copy_pairs(tmp_path / "pairs", ids[:3])
    # collector: <id>.png + <id>.json with lat/lng and extra fields; `coordinates: [lat, lon]` form too
    collector = tmp_path / "collector"
    collector.mkdir()
    Image.open(FIXTURES / f"{ids[3]}.jpg").save(collector / "shot-1.png")
    (collector / "shot-1.json").write_text(json.dumps({"lat": 10.5, "lng": -20.25, "heading": 90, "country": "XX"}))
    shutil.copyfile(FIXTURES / f"{ids[4]}.jpg", collector / "shot-2.jpg")
    (collector / "shot-2.json").write_text(json.dumps({"coordinates": [-33.5, 151.25], "location": "pano:abc"}))
    # OSV-5M-style CSV, images under images/
    osv = tmp_path / "osv"
    (osv / "images").mkdir(parents=True)
    for n, i in enumerate(ids[5:8]):
        shutil.copyfile(FIXTURES / f"{i}.jpg", osv / "images" / f"{1000 + n}.jpg")
    with open(osv / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "latitude", "longitude", "thumb_original_url", "country", "sequence", "captured_at", "region"])
        w.writerow([1000, 48.85, 2.35, "x", "FR", "seqA", 1500000000, "Île-de-France"])
        w.writerow([1001, 48.86, 2.36, "x", "FR", "seqA", "", "Île-de-France"])
        w.writerow([1002, -1.5, 36.8, "x", "KE", "", "", "Nairobi"])
    # <lat>,<lon>.jpg
    named = tmp_path / "named"
    named.mkdir()
    shutil.copyfile(FIXTURES / f"{ids[8]}.jpg", named / "52.5,-2.05.jpg")
    before = tree_digest(tmp_path)

    samples, drops = ingest([pairs, collector, osv / "train.csv", named])
    assert drops == []
    by_source = {}
    for s in samples:
        by_source.setdefault(s.source, []).append(s)
    assert len(by_source["csv:train.csv"]) == 3
    seq = {s.id: s for s in by_source["csv:train.csv"]}
    assert seq["1000"].location == seq["1001"].location == "seq:seqA"  # one capture sequence = one location
    assert seq["1000"].captured == "2017-07"
    shot1 = next(s for s in by_source["collector"] if s.image.endswith("shot-1.png"))
    assert (shot1.lat, shot1.lng, shot1.heading) == (10.5, -20.25, 90.0)
    assert shot1.country is None  # labels come from enrich, not from the sidecar
    shot2 = next(s for s in by_source["collector"] if s.image.endswith("shot-2.jpg"))
    assert (shot2.lat, shot2.lng, shot2.location) == (-33.5, 151.25, "pano:abc")
    [n] = by_source["named"]
    assert (n.lat, n.lng) == (52.5, -2.05)
    assert len(samples) == 3 + 2 + 3 + 1
    assert tree_digest(tmp_path) == before


def test_bad_records_are_skipped_with_reasons_and_inputs_untouched(tmp_path):
    ids = fixture_ids()
    src = copy_pairs(tmp_path / "src", ids[:2])
    jpg = (FIXTURES / f"{ids[0]}.jpg").read_bytes()

    def pair(name, meta, image=jpg):
        (src / f"{name}.jpg").write_bytes(image)
        (src / f"{name}.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))

    pair("country_only", {"country": "FR"})
    pair("no_coords", {"heading": 3})
    pair("nan_lat", '{"lat": NaN, "lng": 3.0}')
    pair("big_lat", {"lat": 91.0, "lng": 3.0})
    pair("big_lng", {"lat": 1.0, "lng": -180.5})
    pair("text_lat", {"lat": "north", "lng": 3.0})
    pair("broken_json", '{"lat": 1.0, "lng"')
    pair("list_json", "[1, 2]")
    pair("empty_image", {"lat": 1.0, "lng": 2.0}, image=b"")
    pair("dup_id", {"id": ids[0], "lat": 1.0, "lng": 2.0})
    (src / "orphan.json").write_text(json.dumps({"lat": 1, "lng": 2}))
    shutil.copyfile(FIXTURES / f"{ids[1]}.jpg", src / "no_sidecar_photo.jpg")
    before = tree_digest(src)

    samples, drops = ingest([src, tmp_path / "missing_folder"])
    reasons = {d.id.rsplit("/", 1)[-1]: d.reason for d in drops}
    assert sorted(s.id for s in samples) == ids[:2]
    assert reasons["country_only.json"] == "country-only record"
    assert reasons["no_coords.json"] == "JSON without coordinates"
    assert "not finite" in reasons["nan_lat.json"]
    assert "out of range" in reasons["big_lat.json"] and "out of range" in reasons["big_lng.json"]
    assert "not a number" in reasons["text_lat.json"]
    assert reasons["broken_json.json"].startswith("invalid JSON")
    assert "not an object" in reasons["list_json.json"]
    assert "empty" in reasons["empty_image.json"]
    assert reasons["orphan.json"].startswith("JSON without an image")
    assert "not <lat>,<lon>" in reasons["no_sidecar_photo.jpg"]
    assert "neither a folder nor a .csv" in reasons["missing_folder"]
    dup = [d for d in drops if d.reason.startswith("duplicate id")]
    assert [d.id for d in dup] == [ids[0]] and "first:" in dup[0].reason
    assert tree_digest(src) == before


def test_cli_writes_manifest_and_drops(tmp_path):
    src = copy_pairs(tmp_path / "src", fixture_ids()[:4])
    (src / "bad.json").write_text('{"country": "DE"}')
    (src / "bad.jpg").write_bytes(b"x")
    out = tmp_path / "m.jsonl"
    r = run_cli("ingest", src, "--out", out)
    assert r.returncode == 0, r.stderr
    assert len(list(read_manifest(out))) == 4
    drops = [json.loads(x) for x in (tmp_path / "m.drops.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in drops] == ["country-only record"]
    assert run_cli("ingest").returncode == 2  # usage error
