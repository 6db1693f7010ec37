"""`datalist`: the dataset version as a committed text file, byte-reproducible.

One header line, then `<id> <sha256>` per record, sorted by id, LF line ends. `sha256` is of the
source image as ingested (what a stranger holds), not of our resized copy. Checking inputs
against a committed data-list fails with the first differing records named.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli import BadInput
from runtime.records import Sample, digest, read_manifest
from runtime.records import render_datalist as render

SHOW = 5


class DatalistMismatch(BadInput):
    """The records differ from a committed data-list (the message names the first differences)."""


def parse(text: str) -> dict[str, str]:
    rows = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise BadInput(f"data-list line {n} is not '<id> <sha256>': {line!r}")
        rows[parts[0]] = parts[1]
    return rows


def compare(expected_text: str, actual_text: str, where: str = "data-list") -> None:
    """Raise DatalistMismatch naming the first differing records; None when equal byte for byte."""
    if expected_text == actual_text:
        return
    want, got = parse(expected_text), parse(actual_text)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    parts = []
    if missing:
        parts.append(f"{len(missing)} record(s) missing from the inputs, first: {', '.join(missing[:SHOW])}")
    if extra:
        parts.append(f"{len(extra)} record(s) not in {where}, first: {', '.join(extra[:SHOW])}")
    if changed:
        parts.append(f"{len(changed)} image(s) with a different sha256, first: "
                     + ", ".join(f"{k} ({want[k][:12]}… → {got[k][:12]}…)" for k in changed[:SHOW]))
    if not parts:
        parts.append("same records, different bytes (header or line format)")
    raise DatalistMismatch(f"inputs do not match {where}: " + "; ".join(parts))


def write_or_check(samples: list[Sample], path: Path, check: bool) -> str:
    """Check against `path` when it exists and `check`, else (re)write it; returns the text."""
    text = render(samples)
    if check and path.exists():
        compare(path.read_text(encoding="utf-8"), text, str(path))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(text.encode("utf-8"))
        tmp.replace(path)
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="final manifest")
    p.add_argument("--out", default=None, help="data-list to write")
    p.add_argument("--check", default=None, help="committed data-list to compare with (exit 1 on mismatch)")


def main(args: argparse.Namespace) -> int:
    if not args.out and not args.check:
        raise BadInput("give --out (write) or --check (compare)")
    samples = list(read_manifest(args.inp))
    if args.check:
        if not Path(args.check).is_file():
            raise BadInput(f"data-list to check not found: {args.check}")
        write_or_check(samples, Path(args.check), check=True)
        print(f"datalist: {len(samples)} records match {args.check}")
    if args.out:
        text = write_or_check(samples, Path(args.out), check=False)
        print(f"datalist: wrote {len(samples)} records to {args.out} (sha256 {digest(text)[:12]})")
    return 0
