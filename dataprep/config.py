"""The pipeline's configuration: one dataclass per stage, one JSON file per dataset version.

Relative paths are resolved against the current directory (run from the project root), so the
committed `datasets/<name>/dataprep.json` works unchanged on any checkout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

from runtime.cli import BadInput


@dataclass
class ResizeConfig:
    max_side: int = 320          # longer side in px; the seed's quarter of a 1280×720 frame
    quality: int = 90            # JPEG quality of the resized copies
    workers: int = 0             # 0: all cores


@dataclass
class EnrichConfig:
    max_km: float = 20.0         # nearest-polygon fallback for points just off the coast
    grid_deg: float = 0.1        # lookup-grid resolution; exact tests only in cells near a border


@dataclass
class FilterConfig:
    # Defaults from the measured distributions on ../shared (datasets/streetview/report.html): the one
    # black frame measures 0.1 and the darkest real street 7.5; lens-covered/smeared frames measure
    # 3.5–25 and the least sharp real street 38.
    min_color_std: float = 4.0        # mean per-channel std; black screens and tunnels fall below
    min_laplacian_var: float = 30.0   # sharpness; smeared or covered lenses fall below
    coord_decimals: int = 6           # duplicate coordinates: equal after rounding (≈ 0.1 m)


@dataclass
class SplitConfig:
    val: float = 0.1
    test: float = 0.1
    salt: str = "lost-and-found"      # changing it draws a different (still stable) split
    min_locations_stratify: int = 3   # a country with this many locations gets ≥ 1 in val and test
    val_by_country: dict[str, float] = field(default_factory=dict)  # ISO2 → its own val fraction


@dataclass
class BalanceConfig:
    weights: str | None = None        # JSON {ISO2: weight}; None: uniform over present countries
    slack: float = 10.0               # a country keeps at most slack × its target count
    min_share: float = 0.0            # countries below this share of train records are dropped
    splits: list[str] = field(default_factory=lambda: ["train"])  # val/test keep their natural mix


@dataclass
class CellsConfig:
    min_samples: int = 20             # N: admin-1 regions merged within a country until ≥ N train samples
    max_samples: int = 100            # M: larger cells split by k-means on coordinates
    simplify_deg: float = 0.05        # polygon simplification of the written cells
    seed: int = 0


@dataclass
class PriorConfig:
    # the game's locations (map,lat,lng); None: no prior (the companion then serves the model's own mix)
    locations: str | None = None
    name: str = "world"
    smoothing: float = 1.0            # pseudo-count per cell: no cell is ever impossible


@dataclass
class CacheConfig:
    enabled: bool = True
    size: int = 224                   # tile side, as runtime.preprocess.InputSpec.size


@dataclass
class ReportConfig:
    enabled: bool = True
    thumbnails: int = 24              # dropped images shown; 0 for none


@dataclass
class DataprepConfig:
    sources: list[str] = field(default_factory=list)   # pair folders, OSV-5M-style CSVs, <lat>,<lon>-named folders
    out: str = "work/datasets/streetview"               # generated data (git-ignored)
    artefacts: str | None = None      # committed outputs (datalist, cells, stats, report); None: none
    boundaries: str | None = None     # admin-1 polygons: a path or "download"; None: ../shared/geo when present, else the committed derivative
    datalist_check: bool = True       # fail when the inputs differ from the committed data-list
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    cells: CellsConfig = field(default_factory=CellsConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    @classmethod
    def from_dict(cls, d: dict) -> DataprepConfig:
        return _build(cls, d, "config")

    @classmethod
    def load(cls, path: Path | str) -> DataprepConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _build(cls, d: dict, where: str):
    if not isinstance(d, dict):
        raise BadInput(f"{where}: expected an object, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in d.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        kwargs[name] = _build(type(default), value, f"{where}.{name}") if is_dataclass(default) else value
    return cls(**kwargs)
