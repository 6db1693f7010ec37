"""Shared test settings: where things are, and skipping what needs ../shared when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LF_SHARED", ROOT.parent / "shared"))
STREETVIEW = SHARED / "data" / "streetview"
ADMIN1 = SHARED / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"
FIXTURE_IMAGES = ROOT / "tests" / "fixtures" / "images"


def pytest_collection_modifyitems(config, items):
    if STREETVIEW.is_dir() and ADMIN1.is_file():
        return
    skip = pytest.mark.skip(reason=f"needs the shared data at {SHARED} (absent)")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_images() -> Path:
    return FIXTURE_IMAGES


@pytest.fixture(scope="session")
def shared_streetview() -> Path:
    if not STREETVIEW.is_dir():
        pytest.skip(f"needs {STREETVIEW} (absent)")
    return STREETVIEW
