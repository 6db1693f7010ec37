"""The collector against the local GeoGuessr-like site, in real headless Chromium, two workers."""

from __future__ import annotations

import pytest

from dataprep.collect.supervisor import run_collect
from dataprep.ingest import ingest
from tests.collector_helpers import CREDENTIALS, check_pairs_against_site, fast_config, pairs
from tests.geosite import GeoSite

pytestmark = pytest.mark.e2e


def test_two_workers_collect_singleplayer_pairs_that_ingest_accepts(tmp_path):
    with GeoSite(seed=1) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=8)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["stop_reason"] == "round budget reached"
        assert summary["session"] == "logged in" and cfg.storage_state_path.is_file()
        assert summary["images_saved"] == summary["pairs_after"] == 8
        assert summary["counts"]["browser_launches"] == 2
        assert check_pairs_against_site(cfg.pairs_dir, site) == 8
        games = {pid.rsplit("_", 1)[0] for pid in pairs(cfg.pairs_dir)}
        assert len(games) >= 2  # both workers played

        samples, drops = ingest([cfg.pairs_dir])
        assert drops == [] and sorted(s.id for s in samples) == sorted(pairs(cfg.pairs_dir))

        # The stored session is used again: no second sign-in.
        logins_before = sum(1 for m, p in site.requests if (m, p) == ("POST", "/signin"))
        cfg.max_rounds = 2
        again = run_collect(cfg, None, progress=False)
        assert again["session"] == "reused" and again["pairs_before"] == 8 and again["pairs_after"] == 10
        assert sum(1 for m, p in site.requests if (m, p) == ("POST", "/signin")) == logins_before


def test_battle_royale_spectating_saves_each_rounds_country(tmp_path):
    with GeoSite(seed=2, br_round_seconds=4.0, br_result_seconds=1.0) as site:
        cfg = fast_config(site.url, tmp_path / "collect", mode="br-countries", max_rounds=4)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["images_saved"] == 4, summary
        assert check_pairs_against_site(cfg.pairs_dir, site, mode="br-countries") == 4
        samples, drops = ingest([cfg.pairs_dir])  # country-only pairs: ingest says why it skips them
        assert samples == [] and {d.reason for d in drops} == {"country-only record"}


def test_rate_limits_and_shared_games_are_survived_and_counted(tmp_path):
    # The first 3 game starts answer HTTP 429; every game id is handed out twice.
    with GeoSite(seed=3, ratelimit=3, collide=True) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=6)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["errors"]["rate_limited"] == 3, summary
        assert summary["errors"]["duplicate_game"] >= 1, summary
        assert summary["images_saved"] == 6
        assert check_pairs_against_site(cfg.pairs_dir, site) == 6
