"""`python -m companion serve | predict | baseline-report | protocol-doc`"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from companion import protocol as P
from companion.config import DEFAULT_BUNDLE
from companion.engine import DEFAULT_THREADS
from companion.settings import SERVE_OPTIONS, Settings
from runtime.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput, run_command
from runtime.config import add_config_arguments, option_error

ROOT = Path(__file__).resolve().parent.parent
PLAY_DATASET = ROOT / "work" / "datasets" / "streetview" / "manifest.jsonl"   # `make dataset` builds it
PLAY_FIXTURES = ROOT / "tests" / "fixtures" / "images"


def _play_source(explicit: Path | None) -> Path:
    """--play, else the dataset's test split when dataprep has built it, else the test fixtures."""
    return explicit or (PLAY_DATASET if PLAY_DATASET.is_file() else PLAY_FIXTURES)


def _engine(args):
    from companion.bundle_check import check_bundle
    from companion.engine import Engine

    try:
        check_bundle(args.model)
        return Engine(args.model, threads=args.threads, prior=args.prior)
    except (FileNotFoundError, BadInput) as e:
        print(f"error: cannot load the model bundle: {' '.join(str(e).split())}", file=sys.stderr)
        if Path(args.model) == DEFAULT_BUNDLE:
            print("  (the default bundle is built by `make model`; or pass --model PATH)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def cmd_serve(args) -> int:
    import uvicorn

    from companion.config import pairing_token
    from companion.play import Play
    from companion.server import create_app
    from companion.transport import protocols

    engine = _engine(args)
    options = {name: getattr(args, name) for name in SERVE_OPTIONS}
    try:
        settings = Settings(**options | {"max_connections": _connection_cap(args.max_connections)},
                            token=pairing_token(args.token), rate_burst=max(1, int(2 * args.rate_limit)))
    except ValidationError as e:
        raise option_error(e) from None
    try:
        play = Play(engine, source=_play_source(args.play), db=args.db)
    except (FileNotFoundError, ValueError) as e:
        print(f"warning: Play is off: {e}", file=sys.stderr)
        play = None
    app = create_app(engine, settings, play)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:
                settings.port = self.servers[0].sockets[0].getsockname()[1]  # --port 0 picks a free one
                base = f"http://{_url_host(settings.host)}:{settings.port}"
                print(f"Lost & Found companion on {base} (token: {settings.token}) model {engine.model_id}\n"
                      f"web UI: {base}/?token={settings.token}", flush=True)

    # frames are already compressed, so permessage-deflate would only burn CPU; the server reads at
    # most a few messages ahead per connection (protocol.MAX_INBOX), the protocols bound the rest
    http, ws = protocols(settings.max_connections, settings.header_timeout)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            http=http, ws=ws, backlog=min(settings.max_connections, 64),
                            ws_max_size=settings.max_frame_bytes + 64 * 1024,
                            ws_per_message_deflate=False, ws_ping_interval=20, ws_ping_timeout=20)
    Server(config).run()
    return EXIT_OK


def _connection_cap(wanted: int) -> int:
    """Connections held open stay well below the file-descriptor limit, so a flood of sockets is
    refused instead of hitting EMFILE: asyncio accepts up to a backlog of sockets per turn of the loop
    and a refused one is closed two turns later, so ~3 backlogs may be open beyond the cap."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no resource module on Windows
        return wanted
    return wanted if soft == resource.RLIM_INFINITY else max(8, min(wanted, (soft - 64) // 4))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_predict(args) -> int:
    from runtime.preprocess import ImageError

    engine = _engine(args)
    status = EXIT_OK
    for path in args.images:
        try:
            pred = engine.prediction(engine.frame_log_probs(Path(path).read_bytes()), top_k=args.top_k)
        except (OSError, ImageError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        if args.json:
            print(json.dumps({"image": str(path), **pred.model_dump(mode="json")}), flush=True)
        else:
            print(f"{path}  point {pred.point.lat:.3f}, {pred.point.lng:.3f}")
            for c in pred.countries:
                print(f"  country {c.p:6.1%}  {c.code}  {c.name}")
            for r in pred.regions[: min(3, args.top_k)]:
                print(f"  region  {r.p:6.1%}  {r.country}  {r.name}")
    return status


def cmd_baseline_report(args) -> int:
    from companion.play import baseline_report

    report = baseline_report(_engine(args), db=args.db, player=args.player)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    if not report["images"]:
        print(f"no Play rounds yet: play some at http://{P.DEFAULT_HOST}:{P.DEFAULT_PORT}/#play (python -m companion serve)")
        return EXIT_OK
    print(f"{report['images']} images played by {', '.join(report['players'])}; model {report['model']}")
    print(f"{'':8}{'top-1':>8}{'top-3':>8}{'top-5':>8}")
    for who, s in (("human", report["human"]), ("model", report["model_scores"])):
        print(f"{who:8}" + "".join(f"{s[k]:8.1%}" for k in ("top1", "top3", "top5")))
    return EXIT_OK


def cmd_protocol_doc(args) -> int:
    from companion.protocol_doc import render, render_constants

    text = render()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.js:
        Path(args.js).write_text(render_constants(), encoding="utf-8")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion", description="Lost & Found companion: the local model server.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def model_args(p):
        p.add_argument("--model", type=Path, default=DEFAULT_BUNDLE, help="model bundle folder (default: the bundled one)")
        p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="ONNX Runtime intra-op threads")
        p.add_argument("--prior", default=None,
                       help="where the game sends players: 'world' (the World map, the bundle's default) or 'none' "
                            "(the training data's own mix, for other maps)")

    p = sub.add_parser("serve", help="run the server for the extension and the web UI")
    model_args(p)
    add_config_arguments(p, Settings, only=SERVE_OPTIONS)
    p.add_argument("--token", default=None, help="pairing token (default: $LF_TOKEN, else the saved one)")
    p.add_argument("--play", type=Path, default=None, help="Play images: a manifest.jsonl or a folder of <id>.json + image "
                   "(default: the built dataset's test split, else the test fixtures)")
    p.add_argument("--db", type=Path, default=None, help="Play scores SQLite (default: in the user data dir)")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("predict", help="predict images without a server")
    model_args(p)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--top-k", type=int, default=P.DEFAULT_TOP_K)
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("baseline-report", help="human (Play) vs model top-1/3/5 on the same images")
    model_args(p)
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--player", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_baseline_report)

    p = sub.add_parser("protocol-doc", help="render docs/protocol.md (and the extension's constants) from protocol.py")
    p.add_argument("--out", type=Path, default=None, help="docs/protocol.md (default: stdout)")
    p.add_argument("--js", type=Path, default=None, help="extension/shared/constants.js")
    p.set_defaults(fn=cmd_protocol_doc)

    args = ap.parse_args(argv)
    return run_command(lambda: args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
