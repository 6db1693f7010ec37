"""`python -m dataprep collect`: play the site with N browsers, saving each round's panorama + answer.

Pairs land in OUT/pairs (`<game-id>_<round>.png` + `.json`, ready for `python -m dataprep ingest
OUT/pairs`); run state (session, claims, summary.json) in OUT/state. Credentials come from
GEOGUESSR_EMAIL / GEOGUESSR_PASSWORD, or a prompt, and are only needed when the stored session is
missing or expired. To stop a long run cleanly: Ctrl-C, SIGTERM, or `touch OUT/state/stop`.
Exit codes: 0 done (budget reached or stopped), 1 failed (e.g. login), 2 usage, 130 / 143
interrupted (Ctrl-C / SIGTERM) before the run got going, e.g. while signing in.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .config import MODES, CollectConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="JSON with CollectConfig fields (text steps, selectors, timeouts)")
    p.add_argument("--base-url", help="site to play (default https://www.geoguessr.com)")
    p.add_argument("--out", type=Path, help="output folder (default work/collect)")
    p.add_argument("--mode", choices=MODES, help="singleplayer (World, coordinates) or br-countries (country)")
    p.add_argument("--workers", type=int, help="parallel browsers (default 2)")
    p.add_argument("--rounds", type=int, dest="max_rounds", help="stop after saving this many pairs")
    p.add_argument("--minutes", type=float, dest="max_minutes", help="stop after this many minutes")
    p.add_argument("--storage-state", type=Path, help="Playwright storage state (default OUT/state/storage_state.json)")
    p.add_argument("--source", help="the pairs' `source` field (default: the site's host name)")
    p.add_argument("--headed", action="store_true", help="show the browsers")
    p.add_argument("--summary", type=Path, help="where to write the summary JSON (default OUT/state/summary.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the effective config as JSON and exit")


def config_from_args(args: argparse.Namespace) -> CollectConfig:
    cfg = CollectConfig.from_json(args.config) if args.config else CollectConfig()
    for name in ("base_url", "out", "mode", "workers", "max_rounds", "max_minutes", "storage_state", "source"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.headed:
        cfg.headless = False
    cfg.validate()
    return cfg


def main(args: argparse.Namespace) -> int:
    from .site import LoginFailed
    from .supervisor import credentials_from_env, run_collect

    cfg = config_from_args(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    signal.signal(signal.SIGTERM, _stop_on_term)  # a service stop: finish the round, write the summary
    try:
        summary = run_collect(cfg, credentials_from_env(prompt=True), progress=not args.no_progress,
                              summary_path=args.summary)
    except LoginFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # once the workers run, the supervisor takes it and stops them cleanly
        how = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        print(f"interrupted by {how} before the run got going (e.g. while signing in): no summary written",
              file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    print(format_summary(summary), file=sys.stderr)
    return 1 if summary["errors"].get("fatal") else 0


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
    try:
        return main(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
