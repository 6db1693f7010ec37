"""`balance`: the seed's distribution mapping, on the train split (val/test keep their natural mix).

Target share t_c per country: a JSON of weights, or uniform over the countries present. A country
whose share of train records is below `min_share` is dropped (every split: the model will have no
cell for it). A country keeps at most `slack × t_c × N` train records (N: train records before
balancing); a country above that keeps whole locations, in hash order, up to the cap. Nothing is
duplicated: rare countries are not upsampled here (training may weight them).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from dataprep.drops import Drop, drops_path, write_drops
from dataprep.split import unit_hash
from runtime.cli import BadInput
from runtime.records import Sample, read_manifest, write_manifest

STAGE = "balance"


def load_weights(path: str | Path | None) -> dict[str, float] | None:
    if not path:
        return None
    w = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(w, dict) or not all(isinstance(v, int | float) and v >= 0 for v in w.values()):
        raise BadInput(f"{path}: expected an object of non-negative numbers keyed by ISO2 country code")
    return {str(k): float(v) for k, v in w.items()}


def balance(samples: list[Sample], weights: dict[str, float] | None = None, slack: float = 10.0,
            min_share: float = 0.0, splits: tuple[str, ...] = ("train",), salt: str = "balance") -> tuple[list[Sample], list[Drop], dict]:
    pool = [s for s in samples if s.split in splits]
    counts = Counter(s.country for s in pool)
    total = sum(counts.values())
    if not total:
        return list(samples), [], {"kept": [], "dropped": [], "capped": {}}
    too_rare = {c for c, n in counts.items() if n / total < min_share}
    present = sorted(set(counts) - too_rare)
    if weights is None:
        target = {c: 1 / len(present) for c in present}
    else:
        s = sum(weights.get(c, 0.0) for c in present)
        if s <= 0:
            raise BadInput("balance weights give no weight to any country present")
        target = {c: weights.get(c, 0.0) / s for c in present}
    zero = {c for c in present if target[c] == 0}
    caps = {c: int(slack * target[c] * total) for c in present}
    locations: dict[str, dict[str, int]] = defaultdict(Counter)
    for s in pool:
        locations[s.country][s.location] += 1
    keep_loc: set[str] = set()
    capped = {}
    for c in present:
        if c in zero:
            continue
        if counts[c] <= caps[c]:
            keep_loc |= set(locations[c])
            continue
        n = 0
        for loc in sorted(locations[c], key=lambda loc: (unit_hash(salt, loc), loc)):
            if n + locations[c][loc] > caps[c] and n > 0:
                continue
            keep_loc.add(loc)
            n += locations[c][loc]
        capped[c] = {"before": counts[c], "after": n, "cap": caps[c]}
    out, drops = [], []
    for s in samples:
        if s.country in too_rare:
            drops.append(Drop(s.id, STAGE, f"country {s.country} below the minimum share {min_share:g}", s.image))
        elif s.split in splits and s.country in zero:
            drops.append(Drop(s.id, STAGE, f"country {s.country} has weight 0", s.image))
        elif s.split in splits and s.location not in keep_loc:
            drops.append(Drop(s.id, STAGE, f"country {s.country} above its cap of {caps[s.country]} records", s.image))
        else:
            out.append(s)
    info = {"kept": sorted(set(present) - zero), "dropped": sorted(too_rare | zero), "capped": capped,
            "before": dict(sorted(counts.items())), "after": dict(sorted(Counter(s.country for s in out if s.split in splits).items()))}
    return out, drops, info


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="split manifest")
    p.add_argument("--out", required=True, help="manifest to write")
    p.add_argument("--weights", default=None, help="JSON {ISO2: weight} (default: uniform)")
    p.add_argument("--slack", type=float, default=10.0, help="a country keeps at most slack × its target count")
    p.add_argument("--min-share", type=float, default=0.0, help="drop countries below this share of train records")


def main(args: argparse.Namespace) -> int:
    samples = list(read_manifest(args.inp))
    if any(s.split is None for s in samples):
        raise BadInput(f"{args.inp}: run split first (records without a split)")
    out, drops, info = balance(samples, load_weights(args.weights), args.slack, args.min_share)
    write_manifest(args.out, out)
    write_drops(drops_path(args.out), drops)
    print(f"balance: kept {len(info['kept'])} countries, dropped {info['dropped']}, capped {info['capped']}")
    return 0
