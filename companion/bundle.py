"""The model bundle: what training exports and the companion serves (defined once, here).

A bundle is a folder:
    bundle.json    BundleMeta below (labels, cells, preprocessing, provenance, metrics)
    model.onnx     input "pixels" float32 [N, 3, S, S] (see `companion.preprocess`),
                   output "logits" float32 [N, len(cells)] (geocell logits)
    cells.geojson  the cells' simplified polygons, properties {"id", "country", "name"}, for drawing
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field

from companion.preprocess import InputSpec

FORMAT = "lostandfound-bundle/1"
DEFAULT_BUNDLE = Path(__file__).resolve().parent / "models" / "default"


class Country(BaseModel):
    code: str   # ISO 3166-1 alpha-2
    name: str


class Region(BaseModel):
    code: str       # Natural Earth adm1_code
    name: str
    country: str    # ISO alpha-2


class CellRegion(BaseModel):
    code: str       # Region.code
    weight: float   # share of the cell's training samples in this region (sums to 1 over a cell)


class Cell(BaseModel):
    id: int             # index of the model's output
    country: str        # ISO alpha-2: cells never cross a country border
    lat: float          # centroid of the cell's training points
    lng: float
    regions: list[CellRegion]


class InputMeta(BaseModel):
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def spec(self) -> InputSpec:
        return InputSpec(size=self.size, mean=tuple(self.mean), std=tuple(self.std))


class BundleMeta(BaseModel):
    format: str = FORMAT
    model_id: str                    # e.g. "lf-dinov2s-cells-2026-11-25"
    created: str                     # ISO 8601
    backbone: str                    # timm name
    input: InputMeta
    countries: list[Country]
    regions: list[Region]
    cells: list[Cell]
    datalist_sha256: str | None = None
    model_sha256: str | None = None  # of model.onnx: a swapped or damaged graph is refused at load
    point_radius_km: float = 400.0   # CellIndex.point radius, tuned on validation by training
    config: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)


def load_meta(bundle_dir: Path | str) -> BundleMeta:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / "bundle.json"
    if not path.is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a model bundle: no bundle.json")
    meta = BundleMeta.model_validate_json(path.read_text(encoding="utf-8"))
    if meta.format != FORMAT:
        raise ValueError(f"{path}: bundle format {meta.format!r}, this companion reads {FORMAT!r}")
    if not (bundle_dir / "model.onnx").is_file():
        raise FileNotFoundError(f"{bundle_dir} has no model.onnx")
    if meta.model_sha256 and meta.model_sha256 != file_sha256(bundle_dir / "model.onnx"):
        raise ValueError(f"{bundle_dir}/model.onnx does not match the sha256 in bundle.json: damaged or replaced")
    return meta


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def save_meta(bundle_dir: Path | str, meta: BundleMeta) -> None:
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    (bundle_dir / "bundle.json").write_text(json.dumps(meta.model_dump(mode="json"), indent=1), encoding="utf-8")
