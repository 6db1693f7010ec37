"""`split`: stable, location-disjoint train/val/test.

Each location draws u = hash(salt, location) ∈ [0, 1): u < test → test, u < test + val → val, else
train, so a location's side never depends on the other records. `val_by_country` gives some countries
their own val fraction: the world validation takes a larger share of the rare, non-US places (where
model choices matter for the World map) and a smaller one of the US, which is half of our places
but 4.6% of the game's. Then, per country with at least
`min_locations` locations, the train location with the smallest u moves to test (and to val) when
that side has none: every such country is evaluated, and the change stays local to that country.
Countries with fewer locations go wholly to train: a country no train record shows cannot be
predicted, so holding its only views out would teach nothing and measure only its absence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict

from dataprep.config import SplitConfig
from runtime.cli import BadInput
from runtime.config import add_config_arguments, config_from_args
from runtime.records import Sample, read_manifest, write_manifest

STAGE = "split"


def unit_hash(salt: str, location: str) -> float:
    digest = hashlib.sha256(f"{salt}\0{location}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(samples: list[Sample], cfg: SplitConfig | None = None) -> dict[str, str]:
    """location → split."""
    cfg = cfg or SplitConfig()
    val, test, salt, min_locations = cfg.val, cfg.test, cfg.salt, cfg.min_locations_stratify
    val_by_country = cfg.val_by_country
    for v in (val, *val_by_country.values()):
        if not (0 <= v and 0 <= test and v + test < 1):
            raise BadInput(f"split fractions val={v} test={test} must be ≥ 0 and sum below 1")
    country_of: dict[str, str | None] = {}
    for s in sorted(samples, key=lambda s: s.id):
        country_of.setdefault(s.location, s.country)
    u = {loc: unit_hash(salt, loc) for loc in country_of}
    side = {loc: "test" if x < test else "val" if x < test + val_by_country.get(country_of[loc], val) else "train"
            for loc, x in u.items()}
    by_country: dict[str | None, list[str]] = defaultdict(list)
    for loc, c in country_of.items():
        by_country[c].append(loc)
    for c, locs in by_country.items():
        if len(locs) < min_locations:
            for loc in locs:
                side[loc] = "train"
            continue
        for want in ("test", "val"):
            if want == "test" and test == 0 or want == "val" and val_by_country.get(c, val) == 0:
                continue
            if not any(side[loc] == want for loc in locs):
                train = sorted((loc for loc in locs if side[loc] == "train"), key=lambda loc: (u[loc], loc))
                if len(train) > 1:
                    side[train[0]] = want
    return side


def split(samples: list[Sample], cfg: SplitConfig | None = None) -> list[Sample]:
    side = assign(samples, cfg)
    return [s.with_(split=side[s.location]) for s in samples]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="enriched manifest")
    p.add_argument("--out", required=True, help="manifest to write")
    add_config_arguments(p, SplitConfig)
    p.add_argument("--val-by-country", type=json.loads, default={},
                   help='JSON {ISO2: val fraction} overriding --val for those countries, e.g. \'{"US": 0.1}\'')


def main(args: argparse.Namespace) -> int:
    out = split(list(read_manifest(args.inp)), config_from_args(SplitConfig, args))
    write_manifest(args.out, out)
    counts = {k: sum(s.split == k for s in out) for k in ("train", "val", "test")}
    print(f"split: {counts}")
    return 0
