"""`python -m dataprep <command>`: one subcommand per stage, plus `all`.

Each command lives in its own module exposing `add_arguments(parser)` and `main(args) -> int`.
Exit codes: runtime.cli's table (0 done, 1 failed, 2 bad input or usage; the message says why).
"""

from __future__ import annotations

import argparse
import importlib

from runtime.cli import run_command

# (command, module, one-line help): a new command is one more line here.
COMMANDS = [
    ("ingest", "dataprep.ingest", "raw image+JSON pairs / CSV / <lat>,<lon> folders → manifest"),
    ("resize", "dataprep.resize", "resized copies (longer side 320 px), all cores, resumable"),
    ("enrich", "dataprep.enrich", "country + admin-1 region from coordinates"),
    ("filter", "dataprep.filters", "drop black/blurred/unreadable images and duplicate coordinates"),
    ("split", "dataprep.split", "stable, location-disjoint train/val/test"),
    ("balance", "dataprep.balance", "resample train to a target country distribution"),
    ("cells", "dataprep.cells", "semantic geocells from the train split; assigns every record"),
    ("prior", "dataprep.prior", "the game's location prior per geocell and per country (prior.json)"),
    ("datalist", "dataprep.datalist", "write or check the data-list (id + sha256 per record)"),
    ("cache", "dataprep.cache", "packed uint8 tile cache (memory-mapped .npy + index)"),
    ("report", "dataprep.report", "HTML + PNG report of a dataset folder"),
    ("all", "dataprep.pipeline", "every stage, from a config file"),
    ("boundaries", "dataprep.boundaries", "write the committed simplified admin-1 derivative"),
    ("collect", "dataprep.collect.cli", "play the site in N browsers, saving panorama + answer pairs"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataprep", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_ in COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_, description=help_)
        mod.add_arguments(p)
        p.set_defaults(func=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.func(args))
