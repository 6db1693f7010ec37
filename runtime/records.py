"""The one record type that crosses the dataprep → training boundary.

Every dataprep stage reads and writes manifests of `Sample` rows (JSONL, one object a line,
sorted by id), and training reads the final manifest. Later stages fill more fields; a field a
stage has not reached yet stays None. The dataset's version is the digest of its data-list
(`render`): one header line, then `<id> <sha256 of the source image>` per record, sorted by id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from runtime.cli import BadInput

DATALIST_HEADER = "# lost-and-found data-list v1: <id> <sha256 of the source image>, sorted by id"


@dataclass(frozen=True)
class Sample:
    id: str                      # unique, stable across rebuilds
    image: str                   # path of the image file (absolute, or relative to the manifest's folder)
    lat: float                   # WGS84 degrees
    lng: float
    location: str                # one place: all views of a place share it; the unit of the split
    source: str                  # where the record came from (a repository, a collector run, a CSV)
    heading: float | None = None  # camera compass heading, degrees
    captured: str | None = None  # YYYY-MM when known
    sha256: str | None = None    # of the image bytes (the data-list's fingerprint)
    # enrich
    country: str | None = None       # ISO 3166-1 alpha-2
    country_name: str | None = None
    adm1_code: str | None = None     # Natural Earth admin-1 code
    region: str | None = None        # admin-1 name
    region_group: str | None = None  # Natural Earth `region` column (a group of admin-1 units)
    # cells / split
    cell: int | None = None          # geocell index into the dataset's cells.geojson
    split: str | None = None         # "train" | "val" | "test"

    def with_(self, **changes) -> Sample:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Sample:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def write_manifest(path: Path | str, samples: Iterable[Sample]) -> int:
    """Write samples sorted by id (deterministic bytes); returns the count."""
    rows = sorted(samples, key=lambda s: s.id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for s in rows:
            f.write(s.to_json() + "\n")
    tmp.replace(path)
    return len(rows)


def read_manifest(path: Path | str) -> Iterator[Sample]:
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Sample.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as e:
                raise BadInput(f"{path}:{n}: not a manifest row: {e}") from e


def image_path(sample: Sample, manifest: Path | str) -> Path:
    """Resolve a sample's image against the folder of the manifest that lists it."""
    p = Path(sample.image)
    return p if p.is_absolute() else Path(manifest).parent / p


def render_datalist(samples: list[Sample]) -> str:
    """The data-list text of `samples` (byte-reproducible: sorted by id, LF line ends)."""
    lines = [DATALIST_HEADER]
    for s in sorted(samples, key=lambda s: s.id):
        if not s.sha256:
            raise BadInput(f"record {s.id} has no sha256 (run ingest)")
        lines.append(f"{s.id} {s.sha256}")
    return "\n".join(lines) + "\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
