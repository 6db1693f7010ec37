"""resize, filter and the packed cache on real fixture images (and broken copies of them)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from dataprep_fixtures import copy_pairs, fixture_ids, tree_digest
from paths import FIXTURES
from PIL import Image, ImageDraw, ImageFilter

from dataprep import cache, filters
from dataprep.config import ResizeConfig
from dataprep.ingest import ingest
from dataprep.resize import resize
from runtime.dataset import load_tiles, tile_reader
from runtime.preprocess import decode_image, tiles_uint8
from runtime.records import image_path, write_manifest


def _ingest(folder):
    samples, drops = ingest([folder])
    return samples, drops


def test_resize_downscales_never_upscales_and_resumes(tmp_path):
    src = copy_pairs(tmp_path / "src", fixture_ids()[:6])
    first = fixture_ids()[0]
    # a truncated JPEG: half its bytes
    data = (FIXTURES / f"{first}.jpg").read_bytes()
    (src / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (src / "trunc.json").write_text(json.dumps({"lat": 1.0, "lng": 2.0}))
    before = tree_digest(src)
    samples, _ = _ingest(src)
    manifest = tmp_path / "out" / "m.jsonl"

    out, drops = resize(samples, manifest, tmp_path / "out" / "small", manifest, ResizeConfig(max_side=100, workers=2))
    assert [d.reason.split(":")[0] for d in drops] == ["unreadable image"]
    assert len(out) == 6
    for s in out:
        assert not os.path.isabs(s.image) and s.image.startswith("small/")
        with Image.open(image_path(s, manifest)) as img:
            assert max(img.size) == 100
    # idempotent: a second run rewrites nothing; resumable: a missing copy is made again
    copies = sorted((tmp_path / "out" / "small").glob("*.jpg"))
    stamps = {p: p.stat().st_mtime_ns for p in copies}
    copies[0].unlink()
    resize(samples, manifest, tmp_path / "out" / "small", manifest, ResizeConfig(max_side=100, workers=2))
    assert copies[0].exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p != copies[0])
    assert not list((tmp_path / "out" / "small").glob(".*tmp"))

    # never upscaled: a JPEG already small enough is copied byte for byte
    big, _ = resize(samples, manifest, tmp_path / "out" / "big", manifest, ResizeConfig(max_side=1000, workers=1))
    s = big[0]
    assert image_path(s, manifest).read_bytes() == (src / f"{s.id}.jpg").read_bytes()
    assert tree_digest(src) == before
    # a source replaced after its copy was made is resized again, not served stale
    changed = next(s for s in out if s.id == fixture_ids()[1])
    copy = image_path(changed, manifest)
    Image.open(FIXTURES / f"{fixture_ids()[2]}.jpg").save(src / f"{changed.id}.jpg")
    os.utime(src / f"{changed.id}.jpg", ns=(copy.stat().st_mtime_ns + 10**9,) * 2)
    old = copy.read_bytes()
    resize(samples, manifest, tmp_path / "out" / "small", manifest, ResizeConfig(max_side=100, workers=2))
    assert copy.read_bytes() != old


def _variants(tmp_path):
    """A black frame with the white corner logo, a smeared copy, a truncated copy, and a good one."""
    src = copy_pairs(tmp_path / "src", fixture_ids()[:3])
    ids = fixture_ids()
    black = Image.new("RGB", (288, 288))
    ImageDraw.Draw(black).text((4, 274), "Google", fill=(255, 255, 255))
    black.save(src / "black.jpg", quality=88)
    Image.open(FIXTURES / f"{ids[3]}.jpg").filter(ImageFilter.GaussianBlur(8)).save(src / "blur.jpg", quality=88)
    data = (FIXTURES / f"{ids[4]}.jpg").read_bytes()
    (src / "trunc.jpg").write_bytes(data[: len(data) // 3])
    for n, name in enumerate(("black", "blur", "trunc")):
        (src / f"{name}.json").write_text(json.dumps({"lat": 10.0 + n, "lng": 20.0}))
    # another location at the coordinates of the first fixture: a duplicate
    meta = json.loads((FIXTURES / f"{ids[0]}.json").read_text())
    (src / "dup.jpg").write_bytes((FIXTURES / f"{ids[5]}.jpg").read_bytes())
    (src / "dup.json").write_text(json.dumps({"lat": meta["lat"], "lng": meta["lng"], "location": "zzz-other"}))
    return src


def test_filter_drops_black_blurred_unreadable_and_duplicate_coordinates(tmp_path):
    src = _variants(tmp_path)
    samples, _ = _ingest(src)
    metrics = filters.measure(samples, tmp_path / "m.jsonl", workers=2)
    kept, drops = filters.filter_samples(samples, metrics)
    why = {d.id: d.reason for d in drops}
    ids = {s.image.rsplit("/", 1)[-1].split(".")[0]: s.id for s in samples}
    assert why[ids["black"]].startswith("colour std")
    assert why[ids["blur"]].startswith("Laplacian variance")
    assert why[ids["trunc"]].startswith("unreadable image")
    assert why[ids["dup"]] == f"duplicate coordinates of location {json.loads((FIXTURES / (fixture_ids()[0] + '.json')).read_text())['location']}"
    assert sorted(s.id for s in kept) == fixture_ids()[:3]


def test_all_fixture_images_pass_the_default_filters(tmp_path):
    samples, _ = _ingest(FIXTURES)
    metrics = filters.measure(samples, tmp_path / "m.jsonl", workers=2)
    kept, drops = filters.filter_samples(samples, metrics)
    assert drops == [] and len(kept) == 32


def test_cache_holds_the_companion_tiles_keyed_by_size_and_datalist(tmp_path):
    src = copy_pairs(tmp_path / "src", fixture_ids()[:3])
    Image.open(FIXTURES / f"{fixture_ids()[3]}.jpg").resize((288, 144)).save(src / "wide.jpg")  # 2:1 → 2 tiles
    (src / "wide.json").write_text(json.dumps({"lat": 1.0, "lng": 2.0}))
    samples, _ = _ingest(src)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, samples)
    folder = cache.build(samples, manifest, tmp_path / "cache", size=32, workers=2)
    tiles, index = load_tiles(folder)
    assert tiles.dtype == np.uint8 and tiles.shape == (5, 32, 32, 3)
    wide = next(s for s in samples if s.image.endswith("wide.jpg"))
    i = index["ids"].index(wide.id)
    assert index["tiles"][i] == 2
    rows = slice(index["first_row"][i], index["first_row"][i] + 2)
    np.testing.assert_array_equal(tiles[rows], tiles_uint8(decode_image((src / "wide.jpg").read_bytes()), 32))
    # the key: same inputs reuse the folder, another size or data-list gets its own
    assert cache.build(samples, manifest, tmp_path / "cache", size=32) == folder
    assert cache.build(samples, manifest, tmp_path / "cache", size=40) != folder
    assert cache.build(samples[:2], manifest, tmp_path / "cache", size=32) != folder
    shutil.copytree(src, tmp_path / "images-160-q90")     # the same sources resized with other settings
    moved = [s.with_(image=s.image.replace("src", "images-160-q90")) for s in samples]
    assert cache.build(moved, manifest, tmp_path / "cache", size=32) != folder


def test_training_reads_tiles_from_the_packed_cache(tmp_path):
    src = copy_pairs(tmp_path / "src", fixture_ids()[:3])
    samples, _ = _ingest(src)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, samples)
    assert tile_reader(manifest, 32) is None            # not built yet: decode instead
    cache.build_published(manifest, tmp_path / "cache", size=32, workers=1)
    read = tile_reader(manifest, 32)
    for s in samples:
        np.testing.assert_array_equal(read(s.id), tiles_uint8(decode_image(image_path(s, manifest).read_bytes()), 32))
