"""Admin-1 boundaries (Natural Earth 10m "States, Provinces"), normalized for enrich and cells.

Where they come from, in order: an explicit path; `download` (Natural Earth's official zip, fetched
once into the user's cache folder and reused); `../shared/geo/ne_10m_admin_1_states_provinces.geojson.gz`
beside the project when present; else the simplified derivative committed in `dataprep/resources/`
(made by `python -m dataprep boundaries`), so an offline checkout without ../shared still runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs
import shapely
from tqdm import tqdm

from runtime.cli import BadInput

if TYPE_CHECKING:
    import geopandas as gpd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_BOUNDARIES = PROJECT_ROOT.parent / "shared" / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"
COMMITTED_BOUNDARIES = Path(__file__).resolve().parent / "resources" / "admin1_simplified.geojson.gz"
NATURAL_EARTH_URL = "https://naciscdn.org/naturalearth/10m/cultural/ne_10m_admin_1_states_provinces.zip"
COLUMNS = ["country", "country_name", "adm1_code", "region", "region_group"]

# Areas Natural Earth gives no ISO code (iso_a2 = -1), labelled with the country that holds them in
# everyday use (and on Street View); the Spratly Islands stay unlabelled.
ISO2_FOR_ADM0 = {
    "SOL": "SO", "CYN": "CY", "ESB": "CY", "WSB": "CY", "KAB": "KZ", "KAS": "IN",
    "USG": "CU", "CSI": "AU", "CLP": "FR",
}


class BoundariesError(BadInput):
    """The boundaries file is missing or unusable (the message says which and why)."""


def default_path() -> Path:
    return SHARED_BOUNDARIES if SHARED_BOUNDARIES.exists() else COMMITTED_BOUNDARIES


def download(url: str | None = None, cache_dir: Path | None = None) -> Path:
    """The boundaries file at `url` (default: Natural Earth's), downloaded once into a cache folder."""
    url = url or os.environ.get("LF_NATURAL_EARTH_URL", NATURAL_EARTH_URL)
    cache_dir = Path(cache_dir or platformdirs.user_cache_dir("lostandfound"))
    dest = cache_dir / Path(urllib.parse.urlparse(url).path).name
    if dest.is_file():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")   # a cut-off download never passes for the file
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except OSError as e:  # URLError, HTTPError and socket timeouts are all OSErrors
        part.unlink(missing_ok=True)
        raise BoundariesError(f"cannot download boundaries from {url}: {e} (pass --boundaries PATH to a local copy)") from e
    part.replace(dest)
    return dest


def resolve(path: str | Path | None) -> Path:
    if str(path) == "download":
        return download()
    p = Path(path) if path else default_path()
    if not p.is_file():
        raise BoundariesError(
            f"boundaries file not found: {p} (pass --boundaries PATH to Natural Earth admin-1 polygons; "
            f"official download: {NATURAL_EARTH_URL})"
        )
    return p


def load(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """Polygons with columns country, country_name, adm1_code, region, region_group, geometry (valid)."""
    import geopandas as gpd  # slow to import: not needed for `--help`

    p = resolve(path)
    target = f"/vsigzip/{p.resolve()}" if p.suffix == ".gz" else (f"/vsizip/{p.resolve()}" if p.suffix == ".zip" else p)
    try:
        raw = gpd.read_file(target)
    except Exception as e:  # pyogrio raises several types for unreadable files
        raise BoundariesError(f"cannot read boundaries {p}: {e}") from e
    if "country" in raw.columns:  # already normalized (the committed derivative)
        gdf = raw[COLUMNS + ["geometry"]].copy()
    else:
        missing = {"iso_a2", "adm0_a3", "admin", "adm1_code", "name", "region"} - set(raw.columns)
        if missing:
            raise BoundariesError(f"{p} lacks Natural Earth admin-1 columns {sorted(missing)}")
        iso = raw["iso_a2"].where(raw["iso_a2"] != "-1", raw["adm0_a3"].map(ISO2_FOR_ADM0))
        gdf = gpd.GeoDataFrame(
            {
                "country": iso,
                "country_name": raw["admin"],
                "adm1_code": raw["adm1_code"],
                "region": raw["name"],
                "region_group": raw["region"].replace("", None),
            },
            geometry=raw.geometry.values,
            crs="EPSG:4326",
        )
    gdf = gdf.replace({np.nan: None})
    bad = ~shapely.is_valid(gdf.geometry.values)
    if bad.any():
        gdf.loc[bad, "geometry"] = shapely.make_valid(gdf.geometry.values[bad])
    gdf = gdf[~gdf.geometry.is_empty & gdf["adm1_code"].notna()].reset_index(drop=True)
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return gdf


def write_simplified(src: str | Path | None, dst: Path, tolerance: float = 0.01, decimals: int = 4) -> int:
    """The committed derivative: normalized columns, simplified polygons, rounded coordinates, gzip."""
    gdf = load(src)
    geoms = shapely.simplify(gdf.geometry.values, tolerance, preserve_topology=True)
    geoms = shapely.make_valid(shapely.set_precision(geoms, 10.0**-decimals))
    geoms = np.array([shapely.Polygon() if g is None else g for g in geoms])
    keep = ~shapely.is_empty(geoms)
    features = []
    for (_, row), g in zip(gdf[keep].iterrows(), geoms[keep], strict=True):
        polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type in ("Polygon", "MultiPolygon")]
        g = shapely.union_all(polys) if polys else g
        features.append({"type": "Feature", "properties": {c: row[c] for c in COLUMNS},
                         "geometry": shapely.geometry.mapping(g)})
    text = json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(dst, "wb", mtime=0) as f:
        f.write(text.encode("utf-8"))
    return len(features)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", default=None, help="full Natural Earth admin-1 file (default: ../shared/geo/...)")
    p.add_argument("--out", default=str(COMMITTED_BOUNDARIES), help="derivative to write")
    p.add_argument("--tolerance", type=float, default=0.01, help="simplification tolerance, degrees")


def main(args: argparse.Namespace) -> int:
    n = write_simplified(args.src, Path(args.out), args.tolerance)
    print(f"wrote {n} regions to {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0
