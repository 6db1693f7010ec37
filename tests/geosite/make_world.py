"""Regenerate static/world.json and extension/data/world.json: simplified country outlines (Natural Earth).

    python -m tests.geosite.make_world   (needs ../shared/geo and geopandas)

Natural Earth 10m admin-1 (public domain) dissolved to countries, simplified to 0.2°, outer rings only,
coordinates rounded to 0.01°: ~220 kB, enough to draw a small world map and to look up a country.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN1 = ROOT.parent / "shared" / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"
OUTPUTS = [Path(__file__).resolve().parent / "static" / "world.json", ROOT / "extension" / "data" / "world.json"]
TOLERANCE = 0.2


def main() -> None:
    import geopandas as gpd
    from shapely import make_valid

    gdf = gpd.read_file(f"/vsigzip/{ADMIN1}", columns=["iso_a2", "admin"])
    gdf["geometry"] = gdf.geometry.apply(lambda g: g if g.is_valid else make_valid(g))
    gdf.loc[gdf.iso_a2 == "-1", "iso_a2"] = "XX"
    countries = gdf.dissolve(by=["iso_a2", "admin"]).reset_index()
    countries["geometry"] = countries.geometry.simplify(TOLERANCE, preserve_topology=True).buffer(0)
    features = []
    for _, row in countries[~countries.geometry.is_empty].iterrows():
        g = row.geometry
        polygons = [g] if g.geom_type == "Polygon" else [p for p in getattr(g, "geoms", []) if p.geom_type == "Polygon"]
        rings = [[[round(x, 2), round(y, 2)] for x, y in p.exterior.coords]
                 for p in polygons if p.area >= TOLERANCE * TOLERANCE]
        if rings:
            features.append({"code": row.iso_a2, "name": row.admin, "rings": rings})
    text = json.dumps(features, separators=(",", ":"))
    for out in OUTPUTS:
        out.write_text(text, encoding="utf-8")
        print(f"{out}: {len(features)} countries, {len(text) // 1024} kB")


if __name__ == "__main__":
    main()
