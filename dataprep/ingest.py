"""`ingest`: raw sources → one manifest of `Sample` rows.

Three input layouts, detected per source:
  (a) pair folders: `<id>.(jpg|jpeg|png|webp)` + `<id>.json` with `lat`/`lng` (or `coordinates: [lat, lon]`),
      optional `id`, `heading`, `location`, `source`, `captured`, `country` (the streetview data, the collector);
  (b) a CSV in the layout of OSV-5M's `train.csv` (`id`, `latitude`, `longitude`, …, optional `sequence`,
      `captured_at`, an image column `image`/`path`/`file`, else `<id>.<ext>` found under the CSV's folder);
  (c) images whose file names are `<lat>,<lon>.<ext>` (no sidecar).
Inputs are only read. Every record that cannot be used is listed with its reason.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from dataprep.drops import Drop, drops_path, write_drops
from runtime.files import file_sha256
from runtime.records import Sample, write_manifest

STAGE = "ingest"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")


def short_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def parse_coord(value, name: str, limit: float) -> float:
    """A finite number within ±limit, or ValueError saying what is wrong."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} is {value!r}, not a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is {value!r}, not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} is {x}, not finite")
    if abs(x) > limit:
        raise ValueError(f"{name} {x} out of range ±{limit:g}")
    return x


def coords_from(d: dict) -> tuple[float, float] | None:
    """(lat, lng) from a sidecar's fields; None when it has none."""
    if "lat" in d or "lng" in d or "lon" in d:
        return parse_coord(d.get("lat"), "lat", 90), parse_coord(d.get("lng", d.get("lon")), "lng", 180)
    if "coordinates" in d:
        c = d["coordinates"]
        if not isinstance(c, list | tuple) or len(c) != 2:
            raise ValueError(f"coordinates is {c!r}, not [lat, lon]")
        return parse_coord(c[0], "lat", 90), parse_coord(c[1], "lng", 180)
    return None


def latlon_from_name(stem: str) -> tuple[float, float] | None:
    parts = stem.split(",")
    if len(parts) != 2:
        return None
    try:
        return parse_coord(parts[0], "lat", 90), parse_coord(parts[1], "lng", 180)
    except ValueError:
        return None


def point_location(lat: float, lng: float) -> str:
    # Views without a place id share a location when they share coordinates (to ~0.1 m).
    return f"{lat:.6f},{lng:.6f}"


def opt_float(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def opt_month(v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, int | float) or (isinstance(v, str) and v.replace(".", "", 1).isdigit()):
        try:
            return datetime.fromtimestamp(float(v), UTC).strftime("%Y-%m")  # OSV-5M: unix seconds
        except (OverflowError, OSError, ValueError):
            return None
    s = str(v)
    return s[:7] if len(s) >= 7 and s[4] == "-" else None


def check_image(path: Path) -> str | None:
    """A reason when the file cannot be an image; decoding is the filter's job."""
    if not path.is_file():
        return f"image file missing: {path}"
    if path.stat().st_size == 0:
        return f"image file is empty: {path}"
    return None


def ingest_pair_folder(root: Path, drops: list[Drop]) -> list[Sample]:
    """Layouts (a) and (c) under one folder (recursively)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    by_stem: dict[Path, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.with_suffix(""), []).append(p)
    out = []
    for stem, group in tqdm(sorted(by_stem.items()), desc=f"ingest {root.name}", unit="rec", leave=False):
        images = [p for p in group if p.suffix.lower() in IMAGE_EXTS]
        sidecar = next((p for p in group if p.suffix.lower() == ".json"), None)
        if sidecar is None and not images:
            continue  # not a record (README, CSV, ...)
        label = str(sidecar or images[0])
        if sidecar is not None and not images:
            drops.append(Drop(label, STAGE, "JSON without an image (no .jpg/.jpeg/.png/.webp beside it)"))
            continue
        image = images[0]
        rel = image.relative_to(root).as_posix()
        if sidecar is None:
            ll = latlon_from_name(stem.name)
            if ll is None:
                drops.append(Drop(label, STAGE, "image without a JSON sidecar, and its name is not <lat>,<lon>"))
                continue
            lat, lng = ll
            meta: dict = {}
        else:
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                drops.append(Drop(label, STAGE, f"invalid JSON: {e}"))
                continue
            if not isinstance(meta, dict):
                drops.append(Drop(label, STAGE, f"JSON is a {type(meta).__name__}, not an object"))
                continue
            try:
                ll = coords_from(meta)
            except ValueError as e:
                drops.append(Drop(label, STAGE, f"bad coordinates: {e}"))
                continue
            if ll is None:
                reason = "country-only record" if meta.get("country") else "JSON without coordinates"
                drops.append(Drop(label, STAGE, reason))
                continue
            lat, lng = ll
        bad = check_image(image)
        if bad:
            drops.append(Drop(label, STAGE, bad))
            continue
        source = str(meta.get("source") or root.name)
        out.append(
            Sample(
                id=str(meta.get("id") or short_id(f"{source}:{rel}")),
                image=str(image.resolve()),
                lat=lat,
                lng=lng,
                location=str(meta.get("location") or point_location(lat, lng)),
                source=source,
                heading=opt_float(meta.get("heading")),
                captured=opt_month(meta.get("captured")),
                sha256=file_sha256(image),
            )
        )
    return out


def find_csv_image(csv_dir: Path, row: dict, index: dict[str, Path] | None) -> Path | None:
    for col in ("image", "path", "file", "filename"):
        if row.get(col):
            p = Path(row[col])
            return p if p.is_absolute() else csv_dir / p
    rid = row.get("id", "")
    for folder in (csv_dir, csv_dir / "images"):
        for ext in IMAGE_EXTS:
            if (folder / f"{rid}{ext}").is_file():
                return folder / f"{rid}{ext}"
    return index.get(rid) if index is not None else None


def ingest_csv(path: Path, drops: list[Drop]) -> list[Sample]:
    """Layout (b): OSV-5M's `train.csv` (a `sequence` is one capture run: the unit of the split)."""
    source = f"csv:{path.name}"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    index = None
    out = []
    for n, row in enumerate(tqdm(rows, desc=f"ingest {path.name}", unit="rec", leave=False), 2):
        label = f"{path}:{n}"
        try:
            lat = parse_coord(row.get("latitude", row.get("lat")), "lat", 90)
            lng = parse_coord(row.get("longitude", row.get("lng", row.get("lon"))), "lng", 180)
        except ValueError as e:
            drops.append(Drop(label, STAGE, f"bad coordinates: {e}"))
            continue
        image = find_csv_image(path.parent, row, index)
        if image is None and index is None:
            # images nested as in OSV-5M's unpacked zips (images/train/00/<id>.jpg): index once
            index = {p.stem: p for p in path.parent.rglob("*") if p.suffix.lower() in IMAGE_EXTS}
            image = find_csv_image(path.parent, row, index)
        if image is None:
            drops.append(Drop(label, STAGE, f"no image found for id {row.get('id')!r}"))
            continue
        bad = check_image(image)
        if bad:
            drops.append(Drop(label, STAGE, bad))
            continue
        rid = row.get("id") or short_id(f"{source}:{image.name}")
        out.append(
            Sample(
                id=str(rid),
                image=str(image.resolve()),
                lat=lat,
                lng=lng,
                location=f"seq:{row['sequence']}" if row.get("sequence") else point_location(lat, lng),
                source=source,
                heading=opt_float(row.get("heading")),
                captured=opt_month(row.get("captured_at") or row.get("captured")),
                sha256=file_sha256(image),
            )
        )
    return out


def ingest(sources: list[str | Path]) -> tuple[list[Sample], list[Drop]]:
    drops: list[Drop] = []
    samples: list[Sample] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            samples += ingest_pair_folder(p, drops)
        elif p.is_file() and p.suffix.lower() == ".csv":
            samples += ingest_csv(p, drops)
        else:
            drops.append(Drop(str(p), STAGE, "source is neither a folder nor a .csv file (or does not exist)"))
    # Duplicate ids: keep the first by image path, so the result does not depend on source order.
    samples.sort(key=lambda s: (s.id, s.image))
    kept: dict[str, Sample] = {}
    for s in samples:
        if s.id in kept:
            drops.append(Drop(s.id, STAGE, f"duplicate id (first: {kept[s.id].image})", s.image))
        else:
            kept[s.id] = s
    return list(kept.values()), drops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", help="pair folders, OSV-5M-style CSVs, or <lat>,<lon>-named image folders")
    p.add_argument("--out", required=True, help="manifest to write (JSONL)")


def main(args: argparse.Namespace) -> int:
    samples, drops = ingest(args.sources)
    write_manifest(args.out, samples)
    write_drops(drops_path(args.out), drops)
    print(f"ingest: {len(samples)} records, {len(drops)} skipped (listed in {drops_path(args.out)})")
    return 0
