"""The pipeline's configuration: one model per stage, one JSON file per dataset version.

Every default is written once, here: the stage functions take these models and the stage commands
derive their options from the fields (runtime.config), so `python -m dataprep <stage>` alone runs
with the settings `all` gives it. Relative paths are resolved against the current directory (run
from the project root), so the committed `datasets/<name>/dataprep.json` works on any checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from runtime.config import Config, load_config


class ResizeConfig(Config):
    max_side: int = Field(320, ge=16, description="longer side in px, never upscaled (the seed's quarter of a 1280×720 frame)")
    quality: int = Field(90, ge=1, le=100, description="JPEG quality of the resized copies")
    workers: int = Field(0, ge=0, description="processes (0: all cores)")


class EnrichConfig(Config):
    max_km: float = Field(20.0, description="nearest-polygon fallback for points just off the coast")
    grid_deg: float = Field(0.1, gt=0, description="lookup-grid resolution; exact tests only in cells near a border")


class FilterConfig(Config):
    # Defaults from the measured distributions on ../shared (datasets/streetview/report.html): the one
    # black frame measures 0.1 and the darkest real street 7.5; lens-covered/smeared frames measure
    # 3.5–25 and the least sharp real street 38.
    min_color_std: float = Field(4.0, description="mean per-channel std; black screens and tunnels fall below")
    min_laplacian_var: float = Field(30.0, description="sharpness; smeared or covered lenses fall below")
    coord_decimals: int = Field(6, description="duplicate coordinates: equal after rounding (≈ 0.1 m)")


class SplitConfig(Config):
    val: float = Field(0.1, description="share of locations in val")
    test: float = Field(0.1, description="share of locations in test")
    salt: str = Field("lost-and-found", description="changing it draws a different (still stable) split")
    min_locations_stratify: int = Field(3, description="a country with this many locations gets ≥ 1 in val and test")
    val_by_country: dict[str, float] = Field(default_factory=dict)  # ISO2 → its own val fraction


class BalanceConfig(Config):
    weights: str | None = None        # JSON {ISO2: weight}; None: uniform over present countries
    slack: float = 10.0               # a country keeps at most slack × its target count
    min_share: float = 0.0            # countries below this share of train records are dropped
    splits: list[str] = Field(default_factory=lambda: ["train"])  # val/test keep their natural mix


class CellsConfig(Config):
    min_samples: int = Field(20, ge=1, description="N: admin-1 regions merged within a country until ≥ N train samples")
    max_samples: int = Field(100, ge=1, description="M: larger cells split by k-means on coordinates")
    simplify_deg: float = Field(0.05, ge=0, description="polygon simplification of the written cells")
    seed: int = Field(0, description="k-means seed")


class PriorConfig(Config):
    # the game's locations (map,lat,lng); None: no prior (the companion then serves the model's own mix)
    locations: str | None = None
    name: str = "world"
    smoothing: float = Field(1.0, ge=0, description="pseudo-count per cell: no cell is ever impossible")


class CacheConfig(Config):
    enabled: bool = True
    size: int = Field(224, ge=16, description="tile side, as runtime.preprocess.InputSpec.size")


class ReportConfig(Config):
    enabled: bool = True
    thumbnails: int = 24              # dropped images shown; 0 for none


class DataprepConfig(Config):
    sources: list[str] = Field(default_factory=list)   # pair folders, OSV-5M-style CSVs, <lat>,<lon>-named folders
    out: str = "work/datasets/streetview"               # generated data (git-ignored)
    artefacts: str | None = None      # committed outputs (datalist, cells, stats, report); None: none
    boundaries: str | None = None     # admin-1 polygons: a path or "download"; None: ../shared/geo when present, else the committed derivative
    datalist_check: bool = True       # fail when the inputs differ from the committed data-list
    resize: ResizeConfig = Field(default_factory=ResizeConfig)
    enrich: EnrichConfig = Field(default_factory=EnrichConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    cells: CellsConfig = Field(default_factory=CellsConfig)
    prior: PriorConfig = Field(default_factory=PriorConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @classmethod
    def from_dict(cls, d: dict) -> DataprepConfig:
        return load_config(cls, d)

    @classmethod
    def load(cls, path: Path | str) -> DataprepConfig:
        return load_config(cls, path)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2) + "\n"
