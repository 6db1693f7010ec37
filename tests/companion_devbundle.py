"""Development model bundles for the companion's tests and benchmark, made from the fixture images.

Two kinds, both real ONNX models in the contract's bundle format (`runtime.bundle`):
- `tiny`: a 4×4-stride convolution + linear head at 64 px, built with onnx.helper in milliseconds.
  The load tests use it: they exercise the server (10,000 frames), not the network.
- a timm backbone (e.g. `mobilenetv2_100`), random weights, exported with torch: a stand-in for
  the trained default bundle while it does not exist.

Cells: one per fixture location, labelled with the country of the shipped world outline; regions
from Natural Earth admin-1 when ../shared is there, else one placeholder region per country.

    python tests/companion_devbundle.py OUT_DIR [--backbone mobilenetv2_100]
"""

from __future__ import annotations

import argparse
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from paths import ADMIN1, FIXTURES

from companion.world import world
from runtime.bundle import BundleMeta, Cell, CellRegion, Country, InputMeta, Region, save_meta


def fixture_points() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


def _regions(points: list[dict], natural_earth: bool) -> list[tuple[str, str]]:
    """(adm1_code, name) for each point: Natural Earth when asked and available, else a per-country placeholder."""
    if natural_earth and ADMIN1.is_file():
        import geopandas as gpd
        import shapely

        adm = gpd.read_file(f"/vsigzip/{ADMIN1}", columns=["adm1_code", "name"])
        adm["geometry"] = shapely.make_valid(adm.geometry.values)
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([p["lng"] for p in points], [p["lat"] for p in points]), crs=adm.crs)
        with warnings.catch_warnings():  # nearest in degrees is fine: the points lie inside their regions
            warnings.simplefilter("ignore", UserWarning)
            hit = gpd.sjoin_nearest(pts, adm, how="left").groupby(level=0).first()
        return list(zip(hit.adm1_code, hit["name"], strict=True))
    return [(f"{world().country_at(p['lat'], p['lng'])[0]}-dev", "placeholder region") for p in points]


def bundle_meta(model_id: str, backbone: str, size: int) -> BundleMeta:
    points = fixture_points()
    regions = _regions(points, natural_earth=backbone != "tiny")  # the tiny bundle is built in every test run
    countries: dict[str, str] = {}
    region_rows: dict[str, Region] = {}
    cells = []
    for i, (p, (rcode, rname)) in enumerate(zip(points, regions, strict=True)):
        code, name = world().country_at(p["lat"], p["lng"])
        countries[code] = name
        region_rows[rcode] = Region(code=rcode, name=rname, country=code)
        cells.append(Cell(id=i, country=code, lat=p["lat"], lng=p["lng"], regions=[CellRegion(code=rcode, weight=1.0)]))
    return BundleMeta(
        model_id=model_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        backbone=backbone,
        input=InputMeta(size=size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        countries=[Country(code=c, name=n) for c, n in sorted(countries.items())],
        regions=sorted(region_rows.values(), key=lambda r: r.code),
        cells=cells,
        config={"note": "development bundle: random weights, cells from the test fixtures"},
    )


def cells_geojson(meta: BundleMeta, half_deg: float = 2.0) -> dict:
    feats = []
    for c in meta.cells:
        lat0, lat1 = max(-90.0, c.lat - half_deg), min(90.0, c.lat + half_deg)
        lng0, lng1 = c.lng - half_deg, c.lng + half_deg
        ring = [[lng0, lat0], [lng1, lat0], [lng1, lat1], [lng0, lat1], [lng0, lat0]]
        feats.append({
            "type": "Feature",
            "properties": {"id": c.id, "country": c.country, "name": f"cell {c.id}"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    return {"type": "FeatureCollection", "features": feats}


def _tiny_onnx(path: Path, size: int, n_cells: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_conv = rng.normal(0, 0.5, (16, 3, 4, 4)).astype(np.float32)
    w_fc = rng.normal(0, 1.0, (16, n_cells)).astype(np.float32)
    b_fc = np.zeros(n_cells, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["pixels", "w_conv"], ["c"], strides=[4, 4], kernel_shape=[4, 4]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", n_cells])],
        [numpy_helper.from_array(w_conv, "w_conv"), numpy_helper.from_array(w_fc, "w_fc"), numpy_helper.from_array(b_fc, "b_fc")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _timm_onnx(path: Path, backbone: str, size: int, n_cells: int) -> None:
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(backbone, pretrained=False, num_classes=n_cells).eval()
    x = torch.zeros(1, 3, size, size)
    torch.onnx.export(
        model, (x,), str(path), input_names=["pixels"], output_names=["logits"],
        dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False,
    )


def build(out: Path, backbone: str = "tiny", size: int | None = None) -> Path:
    """Write a bundle to `out` (skipped when one is already there) and return `out`."""
    out = Path(out)
    if (out / "bundle.json").is_file() and (out / "model.onnx").is_file():
        return out
    size = size or (64 if backbone == "tiny" else 224)
    meta = bundle_meta(f"dev-{backbone}-fixtures", backbone, size)
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    if backbone == "tiny":
        _tiny_onnx(tmp / "model.onnx", size, len(meta.cells))
    else:
        _timm_onnx(tmp / "model.onnx", backbone, size, len(meta.cells))
    (tmp / "cells.geojson").write_text(json.dumps(cells_geojson(meta)), encoding="utf-8")
    save_meta(tmp, meta)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--backbone", default="mobilenetv2_100", help='a timm name, or "tiny"')
    ap.add_argument("--size", type=int, default=None)
    args = ap.parse_args()
    print(build(args.out, args.backbone, args.size))


if __name__ == "__main__":
    main()
