"""The import rule (docs/architecture.md): data flows one way, and the code imports along it.

runtime is shared by every part and imports none of them; dataprep, training and the companion
import runtime and themselves only (training reads dataprep's published files, the companion reads
training's bundle). Every import counts, lazy ones inside functions included.
"""

from __future__ import annotations

import ast
import sys

import pytest
from paths import ROOT

PARTS = {"runtime", "companion", "dataprep", "training"}
MAY_IMPORT = {part: {part, "runtime"} for part in PARTS}
# runtime runs everywhere the companion runs: the serving dependencies only (no FastAPI, torch, shapely)
RUNTIME_THIRD_PARTY = {"numpy", "PIL", "pydantic"}


def imports(source: str) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(part: str, source: str, where: str = "<source>") -> list[str]:
    out = []
    for line, top in imports(source):
        if top in PARTS and top not in MAY_IMPORT[part]:
            out.append(f"{where}:{line}: {part} imports {top}")
        elif part == "runtime" and top not in PARTS and top not in sys.stdlib_module_names | RUNTIME_THIRD_PARTY:
            out.append(f"{where}:{line}: runtime imports {top}, not a serving dependency")
    return out


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_imports_only_along_the_flow(part):
    files = sorted((ROOT / part).rglob("*.py"))
    assert files
    bad = [v for f in files for v in violations(part, f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert not bad, "\n".join(bad)


def test_the_rule_catches_lazy_and_aliased_imports():
    src = "import json\ndef f():\n    import dataprep.records as r\n    from training import train\n"
    assert violations("companion", src) == ["<source>:3: companion imports dataprep",
                                            "<source>:4: companion imports training"]
    assert violations("runtime", "from fastapi import FastAPI\nfrom runtime.geo import haversine_km\n") == [
        "<source>:1: runtime imports fastapi, not a serving dependency"]
    assert violations("training", "from runtime.bundle import BundleMeta\nfrom . import data\n") == []
