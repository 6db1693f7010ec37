"""`python -m dataprep collect`: play the site with N browsers, saving each round's panorama + answer.

Pairs land in OUT/pairs (`<game-id>_<round>.png` + `.json`, ready for `python -m dataprep ingest
OUT/pairs`); run state (session, claims, summary.json) in OUT/state. Credentials come from
GEOGUESSR_EMAIL / GEOGUESSR_PASSWORD, or a prompt, and are only needed when the stored session is
missing or expired. To stop a long run cleanly: Ctrl-C, SIGTERM, or `touch OUT/state/stop`.
Exit codes: runtime.cli's table (0 done, budget reached or stopped; 1 failed, e.g. login or another run
on OUT; 2 bad input or usage), and 130 / 143 when interrupted (Ctrl-C / SIGTERM) before the run got going,
e.g. while signing in.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from runtime.cli import EXIT_FAILED, run_command
from runtime.config import add_config_arguments, overrides

from .config import CollectConfig

# the settings a run is usually given on the command line; everything else is in --config's file
OPTIONS = ("base_url", "out", "mode", "workers", "max_rounds", "max_minutes", "headless", "storage_state", "source")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="JSON with CollectConfig fields (text steps, selectors, timeouts); "
                   "the options below override it")
    add_config_arguments(p, CollectConfig, only=OPTIONS, overrides_only=True)
    p.add_argument("--summary", type=Path, help="where to write the summary JSON (default OUT/state/summary.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the effective config as JSON and exit")


def config_from_args(args: argparse.Namespace) -> CollectConfig:
    return overrides(CollectConfig.from_json(args.config) if args.config else CollectConfig(), args)


def main(args: argparse.Namespace) -> int:
    from .supervisor import credentials_from_env, run_collect

    cfg = config_from_args(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    signal.signal(signal.SIGTERM, _stop_on_term)  # a service stop: finish the round, write the summary
    try:
        summary = run_collect(cfg, credentials_from_env(prompt=True), progress=not args.no_progress,
                              summary_path=args.summary)
    except KeyboardInterrupt as e:  # once the workers run, the supervisor takes it and stops them cleanly
        how = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        print(f"interrupted by {how} before the run got going (e.g. while signing in): no summary written",
              file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    print(format_summary(summary), file=sys.stderr)
    return EXIT_FAILED if summary["errors"].get("fatal") else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so that it stops a run the way Ctrl-C does."""


def _stop_on_term(signum, frame) -> None:
    raise Terminated


def format_summary(s: dict) -> str:
    lines = [
        f"{s['stop_reason']} after {s['elapsed_s']:.0f} s: {s['images_saved']} pairs saved "
        f"({s['rounds_per_min']:.1f}/min), {s['rounds_played']} rounds played, "
        f"{s['counts'].get('games_started', 0)} games; {s['pairs_after']} pairs in {s['pairs_dir']}",
    ]
    if s["errors"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in s["errors"].items()))
    lines.append(f"summary: {s.get('summary_path')}")
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dataprep.collect", description=__doc__.split("\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return run_command(lambda: main(args))
