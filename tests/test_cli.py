"""The command-line convention: every --help answers at once (no CLI imports torch or another heavy
library to build its parser), and one exit-code table (runtime.cli) for every CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from paths import ROOT

from runtime.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput, Failed, run_command

# in a fresh interpreter: record the top-level subcommands as the parser is built, print each
# one's --help, then report which heavy modules got imported along the way
SCRIPT = """
import argparse, contextlib, importlib, io, json, sys
mod, fn = sys.argv[1].split(":")
names, orig = [], argparse._SubParsersAction.add_parser
def record(self, name, **kw):
    if not names or names[0][0] is self:
        names.append((self, name))
    return orig(self, name, **kw)
argparse._SubParsersAction.add_parser = record
main = getattr(importlib.import_module(mod), fn)
def usage(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(argv)
    return out.getvalue()
top = usage(["--help"])
subs = [n for _, n in names]
bad = [s for s in subs if not usage([s, "--help"]).startswith("usage:")]
heavy = [m for m in ("torch", "timm", "torchvision", "sklearn", "geopandas", "wandb") if m in sys.modules]
print(json.dumps({"top": top.startswith("usage:"), "subcommands": subs, "bad": bad, "heavy": heavy}))
"""


@pytest.mark.parametrize("entry", ["training.cli:main", "dataprep.cli:main", "companion.__main__:main"])
def test_every_help_is_light(entry):
    r = subprocess.run([sys.executable, "-c", SCRIPT, entry], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["top"] and len(out["subcommands"]) >= 4 and out["bad"] == []
    assert out["heavy"] == [], f"`python -m {entry.split('.')[0]} --help` imports {out['heavy']}"


def _raise(e: BaseException):
    raise e


def test_one_exit_code_table_and_bugs_keep_their_traceback(capsys):
    assert run_command(lambda: None) == EXIT_OK and run_command(lambda: 3) == 3
    assert run_command(lambda: _raise(BadInput("config: unknown key 'x'"))) == EXIT_BAD_INPUT
    assert run_command(lambda: _raise(FileNotFoundError("manifest m.jsonl not found"))) == EXIT_BAD_INPUT
    assert run_command(lambda: _raise(Failed("parity 3e-2 > 1e-3"))) == EXIT_FAILED
    assert capsys.readouterr().err.splitlines() == ["error: config: unknown key 'x'", "error: manifest m.jsonl not found",
                                                    "error: parity 3e-2 > 1e-3"]
    for bug in (KeyError("cell"), RuntimeError("boom"), TypeError("x")):   # not domain errors: not hidden
        with pytest.raises(type(bug)):
            run_command(lambda b=bug: _raise(b))


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["dataprep", "datalist", "--in", "missing.jsonl", "--out", "x"], EXIT_BAD_INPUT, "missing.jsonl"),
    (["training", "train", "--manifest", "missing.jsonl"], EXIT_BAD_INPUT, "missing.jsonl"),
])
def test_bad_input_exits_2_in_one_line(argv, code, says):
    r = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == code and says in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
