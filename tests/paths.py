"""Where the tests' inputs are, defined once."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "images"   # 32 real street-view images, each with its <id>.json
SHARED = Path(os.environ.get("LF_SHARED", ROOT.parent / "shared"))
STREETVIEW = SHARED / "data" / "streetview"
ADMIN1 = SHARED / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"
