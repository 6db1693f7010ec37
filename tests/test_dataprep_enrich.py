"""enrich: the grid lookup agrees with plain point-in-polygon; coast fallback; missing boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from dataprep_fixtures import admin1, run_cli
from paths import FIXTURES

from dataprep import boundaries
from dataprep.config import EnrichConfig
from dataprep.enrich import Locator, enrich
from dataprep.ingest import ingest
from runtime.geo import haversine_km
from runtime.records import Sample


@pytest.fixture(scope="module")
def locator():
    return Locator(admin1(), EnrichConfig(max_km=20.0, grid_deg=0.1))


def _reference_inside(geoms, lat, lng):
    """Brute force: the lowest polygon row containing each point (covers: border points count)."""
    tree = shapely.STRtree(geoms)
    p, g = tree.query(shapely.points(lng, lat), predicate="intersects")
    ref = np.full(len(lat), -1)
    for i, j in sorted(zip(p, g, strict=True), reverse=True):
        ref[i] = j
    return ref


def test_grid_lookup_matches_point_in_polygon(locator):
    rng = np.random.default_rng(1)
    n = 20000
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    lng = rng.uniform(-180, 180, n)
    # plus points close to borders and coasts, where the grid must defer to the exact test
    coords = shapely.get_coordinates(locator.geoms)
    pick = coords[rng.integers(0, len(coords), 5000)] + rng.normal(0, 0.02, (5000, 2))
    lng = np.r_[lng, np.clip(pick[:, 0], -180, 180)]
    lat = np.r_[lat, np.clip(pick[:, 1], -90, 90)]
    idx, dist = locator.locate(lat, lng)
    ref = _reference_inside(locator.geoms, lat, lng)
    inside = ref >= 0
    assert inside.sum() > 8000
    # every point inside a polygon gets one that contains it (ties on shared borders may differ)
    same = idx[inside] == ref[inside]
    covers = shapely.intersects_xy(locator.geoms[idx[inside][~same]], lng[inside][~same], lat[inside][~same])
    assert same.mean() > 0.99 and covers.all()
    assert (dist[inside] == 0).all()
    # outside every polygon: either nothing, or a polygon truly within 20 km
    out = ~inside & (idx >= 0)
    assert out.sum() > 100 and (dist[out] > 0).all() and (dist[out] <= 20).all()
    near = shapely.get_coordinates(shapely.shortest_line(shapely.points(lng[out], lat[out]), locator.geoms[idx[out]]))[1::2]
    np.testing.assert_allclose(haversine_km(lat[out], lng[out], near[:, 1], near[:, 0]), dist[out], rtol=1e-6)
    assert ((idx < 0) & inside).sum() == 0


def test_enrich_labels_fixtures_and_handles_the_coast(tmp_path):
    samples, _ = ingest([FIXTURES])
    by_id = {s.id: s for s in samples}
    extra = [
        Sample("offshore", "x.jpg", 50.72, -1.05, "a", "t"),      # Solent, ~2 km off the Isle of Wight
        Sample("mid-ocean", "x.jpg", -30.0, -120.0, "b", "t"),    # South Pacific
    ]
    out, drops = enrich(list(by_id.values()) + extra, admin1())
    got = {s.id: s for s in out}
    assert got["0186ecc7786d7c26"].country == "GB" and got["0186ecc7786d7c26"].country_name == "United Kingdom"
    assert got["0401d5642de8b611"].region == "North Carolina" and got["0401d5642de8b611"].adm1_code.startswith("USA-")
    assert got["0f8d91be454e4621"].country == "AU" and got["0f8d91be454e4621"].region == "Tasmania"
    assert got["offshore"].country == "GB"
    assert [(d.id, d.reason) for d in drops] == [("mid-ocean", "no country within 20 km")]
    assert all(s.country and s.country_name and s.adm1_code and s.region for s in out)


def test_missing_boundaries_file_is_refused_clearly(tmp_path):
    with pytest.raises(boundaries.BoundariesError, match="boundaries file not found"):
        boundaries.load(tmp_path / "nope.geojson.gz")
    m = tmp_path / "m.jsonl"
    m.write_text("")
    r = run_cli("enrich", "--in", m, "--out", tmp_path / "o.jsonl", "--boundaries", tmp_path / "nope.geojson.gz")
    assert r.returncode == 2 and "boundaries file not found" in r.stderr and "Traceback" not in r.stderr


def test_committed_boundaries_are_small_and_complete():
    assert boundaries.COMMITTED_BOUNDARIES.stat().st_size < 5_000_000
    gdf = admin1()
    assert len(gdf) > 4500 and gdf["country"].notna().mean() > 0.99
    assert set(gdf.columns) >= {"country", "country_name", "adm1_code", "region", "region_group", "geometry"}


def test_boundaries_download_once_into_the_cache(tmp_path):
    import functools
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    (served / "admin1.geojson.gz").write_bytes(boundaries.COMMITTED_BOUNDARIES.read_bytes())
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        path = boundaries.download(f"{base}/admin1.geojson.gz", tmp_path / "cache")
        assert path.read_bytes() == boundaries.COMMITTED_BOUNDARIES.read_bytes()
        assert len(boundaries.load(path)) > 4000
        assert boundaries.download(f"{base}/admin1.geojson.gz", tmp_path / "cache") == path and len(hits) == 1
        with pytest.raises(boundaries.BoundariesError, match="cannot download"):
            boundaries.download(f"{base}/missing.zip", tmp_path / "cache")
        assert not list((tmp_path / "cache").glob("*.part"))
    finally:
        server.shutdown()
