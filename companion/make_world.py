"""Build the world outlines, one builder and one format for every copy: `companion/static/world.json`
(the web UI draws it, Play geocodes with it) and, coarser, `extension/data/world.json` (the overlay's
mini-map) with its twin `tests/geosite/static/world.json` (the look-alike site's guess map and answers).

Not needed at runtime (the outputs are committed): Natural Earth 10m admin-1 (public domain) dissolved
by country and heavily simplified, so neither side needs geopandas or a CDN.

    python -m companion.make_world [--admin1 ../shared/geo/ne_10m_admin_1_states_provinces.geojson.gz]
    python -m companion.make_world --tolerance 0.2 --min-area 0.04 \
        --out extension/data/world.json --out tests/geosite/static/world.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "static" / "world.json"
DEFAULT_ADMIN1 = Path(__file__).resolve().parent.parent.parent / "shared" / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"
# Natural Earth splits Palestine into two admin units that share the code PS.
NAME_OVERRIDES = {"PS": "Palestine"}


def build(admin1: Path, tolerance: float, min_area: float) -> dict:
    import geopandas as gpd
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    df = gpd.read_file(f"/vsigzip/{admin1}" if str(admin1).endswith(".gz") else admin1)
    df["geometry"] = shapely.make_valid(df.geometry.values)
    # codes that are not ISO alpha-2 ("-1": bases, disputed areas) are drawn but never named as a country
    df["code"] = df.iso_a2.where(df.iso_a2.str.fullmatch("[A-Z]{2}"), None)
    df["key"] = df.code.fillna("") + "|" + df.admin.where(df.code.isna(), "")
    countries = []
    for key, part in df.groupby("key"):
        code = key.split("|")[0] or None
        geom = shapely.union_all(part.geometry.values).simplify(tolerance, preserve_topology=True)
        polys = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon)]
        polys = [p for g in polys for p in (g.geoms if isinstance(g, MultiPolygon) else [g]) if not p.is_empty]
        if not polys:
            continue
        biggest = max(polys, key=lambda p: p.area)
        # small islands are dropped, except a country's largest piece (small island states stay)
        polys = [p for p in polys if p.area >= min_area or p is biggest]
        # planar area in square degrees: only compared within one country
        areas = part.assign(a=shapely.area(part.geometry.values)).groupby("admin").a.sum()
        name = NAME_OVERRIDES.get(code) or str(areas.idxmax())

        def ring(coords):
            return [[round(x, 2), round(y, 2)] for x, y in coords]

        countries.append({
            "code": code,
            "name": name,
            "polygons": [[ring(p.exterior.coords)] + [ring(h.coords) for h in p.interiors] for p in polys],
        })
    countries.sort(key=lambda c: (c["code"] or "~", c["name"]))
    return {
        "source": "Natural Earth 10m admin-1 states/provinces (public domain), dissolved by country, "
        f"simplified at {tolerance} degrees; built by companion/make_world.py",
        "countries": countries,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin1", type=Path, default=DEFAULT_ADMIN1)
    ap.add_argument("--out", type=Path, action="append", help=f"output file, repeatable (default: {OUT})")
    ap.add_argument("--tolerance", type=float, default=0.1, help="simplification, degrees")
    ap.add_argument("--min-area", type=float, default=0.05, help="drop islands smaller than this, square degrees")
    args = ap.parse_args(argv)
    world = build(args.admin1, args.tolerance, args.min_area)
    for out in args.out or [OUT]:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(world, separators=(",", ":")), encoding="utf-8")
        print(f"{out}: {len(world['countries'])} countries, {out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
