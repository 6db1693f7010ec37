"""The collector against the local GeoGuessr-like site, in real headless Chromium, two workers."""

from __future__ import annotations

import pytest

from dataprep.collect.site import LoginFailed
from dataprep.collect.supervisor import ensure_session, run_collect
from dataprep.ingest import ingest
from tests.collector_helpers import CREDENTIALS, check_pairs_against_site, fast_config, pairs
from tests.geosite import GeoSite

pytestmark = pytest.mark.e2e


def test_two_workers_collect_singleplayer_pairs_that_ingest_accepts(tmp_path):
    with GeoSite(seed=1) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=4)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["stop_reason"] == "round budget reached", summary
        assert summary["session"] == "logged in" and cfg.storage_state_path.is_file()
        assert summary["images_saved"] == summary["pairs_after"] == 4
        assert summary["counts"]["browser_launches"] == 2
        assert check_pairs_against_site(cfg.pairs_dir, site) == 4
        games = {pid.rsplit("_", 1)[0] for pid in pairs(cfg.pairs_dir)}
        assert len(games) >= 2  # both workers played
        assert site.answer_touches() == []  # only the results screen, after the guess, was read

        samples, drops = ingest([cfg.pairs_dir])
        assert drops == [] and sorted(s.id for s in samples) == sorted(pairs(cfg.pairs_dir))

        # The stored session is used again: no second sign-in, and no credentials needed.
        logins = sum(1 for m, p in site.requests if (m, p) == ("POST", "/signin"))
        assert ensure_session(cfg, None) == "reused"
        assert sum(1 for m, p in site.requests if (m, p) == ("POST", "/signin")) == logins


def test_battle_royale_spectating_saves_each_rounds_country(tmp_path):
    with GeoSite(seed=2, br_round_seconds=4.0, br_result_seconds=1.0) as site:
        cfg = fast_config(site.url, tmp_path / "collect", mode="br-countries", max_rounds=2)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["images_saved"] == 2, summary
        assert check_pairs_against_site(cfg.pairs_dir, site, mode="br-countries") == 2
        samples, drops = ingest([cfg.pairs_dir])  # country-only pairs: ingest says why it skips them
        assert samples == [] and {d.reason for d in drops} == {"country-only record"}


def test_faulty_site_hang_black_rate_limit_shared_game_are_survived_and_counted(tmp_path):
    # The first 2 game starts answer HTTP 429; every game id is handed out twice; the 1st game's
    # panorama never renders, the 2nd game's renders all black.
    with GeoSite(seed=3, ratelimit=2, collide=True, game_faults={1: "hang", 2: "black"}) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=4)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        errors = summary["errors"]
        assert errors["rate_limited"] == 2, summary
        assert errors["duplicate_game"] >= 1, summary
        assert errors["render_timeout"] >= 1, summary
        assert errors["black_frame"] >= 1, summary
        assert summary["images_saved"] == 4, summary
        faulty = {g.id for g in site.games.values() if g.fault}
        saved_games = {pid.rsplit("_", 1)[0] for pid in pairs(cfg.pairs_dir)}
        assert len(faulty) == 2 and not faulty & saved_games  # nothing from a hung or black game
        assert check_pairs_against_site(cfg.pairs_dir, site) == 4


def test_wrong_credentials_stop_the_run_with_a_clear_error(tmp_path):
    with GeoSite(seed=4) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=1)
        cfg.timeouts.action_s = 5.0  # how long a sign-in may take to leave the sign-in page
        with pytest.raises(LoginFailed, match="wrong credentials"):
            run_collect(cfg, ("test@example.com", "not-the-password"), progress=False)
        assert not cfg.storage_state_path.exists() and pairs(cfg.pairs_dir) == {}
