"""Shared test settings: the fixture modules, and skipping what needs ../shared when it is absent.

Fixtures come in as plugins (below); helpers and constants are imported by name from their module
(`from companion_fixtures import frame_bytes`), paths from `paths`.
"""

from __future__ import annotations

import pytest
from paths import ADMIN1, FIXTURES, SHARED, STREETVIEW

pytest_plugins = ["companion_fixtures", "training_fixtures"]


def pytest_collection_modifyitems(config, items):
    if STREETVIEW.is_dir() and ADMIN1.is_file():
        return
    skip = pytest.mark.skip(reason=f"needs the shared data at {SHARED} (absent)")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_images():
    return FIXTURES
