"""The model bundle: what training exports and the companion serves (defined once, here).

A bundle is a folder:
    bundle.json    BundleMeta below (labels, cells, preprocessing, provenance, metrics)
    model.onnx     input "pixels" float32 [N, 3, S, S] (see `runtime.preprocess`),
                   output "logits" float32 [N, len(cells)] (geocell logits)
    cells.geojson  the cells' simplified polygons, properties {"id", "country", "name"}, for drawing
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from runtime.cli import BadInput
from runtime.files import file_sha256
from runtime.preprocess import InputSpec

FORMAT = "lostandfound-bundle/2"  # 2: calibrations and priors, cell points


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
    # up to a few of the cell's training places, medoid first: candidate pins, and where in the cell
    # the answer may be when the expected score is computed (posterior.CellIndex.point)
    points: list[tuple[float, float]] = Field(default_factory=list)


class Calibration(BaseModel):
    """How the companion turns the graph's pooled log-probabilities into the probabilities it shows."""

    temperature: float = Field(1.0, gt=0)        # fitted on the world validation, with this prior applied
    log_adjust: list[float] | None = None         # [cells] log π_game − log π_train; None: the model's own mix


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
    # one entry per selectable prior ("none": the training data's own mix); `prior` is served by default
    calibrations: dict[str, Calibration] = Field(default_factory=lambda: {"none": Calibration()})
    prior: str = "none"
    config: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)


def load_meta(bundle_dir: Path | str) -> BundleMeta:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / "bundle.json"
    if not path.is_file():
        raise FileNotFoundError(f"{bundle_dir} is not a model bundle: no bundle.json")
    meta = BundleMeta.model_validate_json(path.read_text(encoding="utf-8"))
    if meta.format != FORMAT:
        raise BadInput(f"{path}: bundle format {meta.format!r}, this companion reads {FORMAT!r}")
    if meta.prior not in meta.calibrations:
        raise BadInput(f"{path}: default prior {meta.prior!r} is not one of its calibrations {sorted(meta.calibrations)}")
    for name, cal in meta.calibrations.items():
        if cal.log_adjust is not None and len(cal.log_adjust) != len(meta.cells):
            raise BadInput(f"{path}: prior {name!r} has {len(cal.log_adjust)} values for {len(meta.cells)} cells")
    if not (bundle_dir / "model.onnx").is_file():
        raise FileNotFoundError(f"{bundle_dir} has no model.onnx")
    if meta.model_sha256 and meta.model_sha256 != file_sha256(bundle_dir / "model.onnx"):
        raise BadInput(f"{bundle_dir}/model.onnx does not match the sha256 in bundle.json: damaged or replaced")
    return meta


def save_meta(bundle_dir: Path | str, meta: BundleMeta) -> None:
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    (bundle_dir / "bundle.json").write_text(json.dumps(meta.model_dump(mode="json"), indent=1), encoding="utf-8")
