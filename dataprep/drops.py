"""Why a record left the pipeline: every stage lists each record it drops, with a reason."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Drop:
    id: str               # the sample id, or the input path when no id could be read
    stage: str
    reason: str
    image: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


def write_drops(path: Path | str, drops: Iterable[Drop]) -> int:
    rows = sorted(drops, key=lambda d: (d.stage, d.id, d.reason))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(d.to_json() + "\n" for d in rows), encoding="utf-8")
    tmp.replace(path)
    return len(rows)


def read_drops(path: Path | str) -> list[Drop]:
    path = Path(path)
    if not path.exists():
        return []
    return [Drop(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def drops_path(manifest_out: Path | str) -> Path:
    """Where a stage writing `x.jsonl` lists its drops: `x.drops.jsonl`."""
    p = Path(manifest_out)
    return p.with_name(p.name.removesuffix(".jsonl") + ".drops.jsonl")
