"""The collector against the local GeoGuessr-like site, in real headless Chromium, two workers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from dataprep.collect.config import CHROMIUM, CHROMIUM_ARGS
from dataprep.collect.site import LoginFailed, Obscured, Site
from dataprep.collect.supervisor import ensure_session, run_collect
from dataprep.ingest import ingest
from tests.collector_helpers import (
    CREDENTIALS,
    VIEWPORT,
    best_matching_place,
    check_pairs_against_site,
    fast_config,
    fingerprints,
    pairs,
)
from tests.geosite import GeoSite

pytestmark = pytest.mark.e2e


def test_two_workers_collect_singleplayer_pairs_that_ingest_accepts(tmp_path):
    with GeoSite(seed=1) as site:
        # Games have 5 rounds: 12 saved pairs let both workers finish their first game, even when one
        # is a round or so ahead and starts a second game before the other finishes.
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=12)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["stop_reason"] == "round budget reached", summary
        assert summary["session"] == "logged in" and cfg.storage_state_path.stat().st_mode & 0o777 == 0o600
        assert summary["images_saved"] == summary["pairs_after"] == 12
        assert summary["counts"]["browser_launches"] == 2 and summary["counts"]["games_complete"] >= 2, summary
        assert check_pairs_against_site(cfg.pairs_dir, site) == 12
        rounds_per_game = Counter(pid.rsplit("_", 1)[0] for pid in pairs(cfg.pairs_dir))
        assert sum(n == site.rounds for n in rounds_per_game.values()) >= 2, rounds_per_game  # whole games, saved
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
        assert "(Retry-After: 1 s)" in summary["last_error"]["rate_limited"], summary  # the site's header was read
        assert summary["images_saved"] == 4, summary
        faulty = {g.id for g in site.games.values() if g.fault}
        saved_games = {pid.rsplit("_", 1)[0] for pid in pairs(cfg.pairs_dir)}
        assert len(faulty) == 2 and not faulty & saved_games  # nothing from a hung or black game
        assert check_pairs_against_site(cfg.pairs_dir, site) == 4

        before, first_games, first_touches = fingerprints(cfg.pairs_dir), dict(site.games), site.answer_touches()

    # A second run into the same folder meets faults again (a 429, a black game, a shared game): what
    # the first run saved must come through byte for byte.
    with GeoSite(seed=30, ratelimit=1, collide=True, game_faults={1: "black"}) as site:
        cfg = fast_config(site.url, cfg.out, max_rounds=2)
        summary = run_collect(cfg, CREDENTIALS, progress=False)
        assert summary["errors"]["rate_limited"] == 1 and summary["pairs_before"] == 4, summary
        assert summary["images_saved"] == 2 and summary["pairs_after"] == 6, summary
        after = fingerprints(cfg.pairs_dir)
        assert {k: after[k] for k in before} == before and len(after) == 12
        site.games.update(first_games)
        assert check_pairs_against_site(cfg.pairs_dir, site) == 6
        assert first_touches == site.answer_touches() == []


# Lands over everything once the collector has started hiding (it adds its stylesheet to <head>), as
# a battle royale's result banner or a late cookie banner would; `stubborn` also defeats the stylesheet.
LATE_BANNER = """(stubborn) => new MutationObserver((_, observer) => {
  observer.disconnect();
  const banner = document.createElement('div');
  banner.style.cssText = 'position:fixed;inset:0;z-index:999;background:rgb(255,0,0)'
    + (stubborn ? ';visibility:visible !important' : '');
  document.body.appendChild(banner);
}).observe(document.head, {childList: true})"""


def test_capture_leaves_out_overlays_that_land_after_hiding_and_the_mouse(tmp_path):
    with GeoSite(seed=7) as site, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=dict(zip(("width", "height"), VIEWPORT, strict=True)))
            context.add_cookies([{"name": "_ncfa", "value": site.new_session(), "url": site.url},
                                 {"name": "OptanonAlertBoxClosed", "value": "1", "url": site.url}])
            page = context.new_page()
            game = site.start_game()
            page.goto(f"{site.url}/game/{game.id}")
            collector = Site(page, fast_config(site.url, tmp_path))
            canvas = collector.loc("panorama")
            canvas.wait_for()
            page.mouse.move(40, 40)  # over the panorama, clear of the UI floating above it
            assert canvas.evaluate("c => c.matches(':hover')")

            page.evaluate(LATE_BANNER, False)
            frame = collector.capture()
            (tmp_path / "shot.png").write_bytes(frame.png)
            shown, diff = best_matching_place(tmp_path / "shot.png", site.places)
            assert shown.id == game.places[0].id and diff < 25, (shown.id, diff)
            red = (frame.thumb[..., 0] > 200) & (frame.thumb[..., 1:].max(axis=-1) < 60)
            assert np.mean(red) < 0.01  # no trace of the banner
            assert not canvas.evaluate("c => c.matches(':hover')")  # the mouse left the panorama
            assert page.evaluate("document.querySelectorAll('[data-lf-keep], [data-lf-target], #lf-hide-style')"
                                 ".length") == 0  # and the page is as it was

            page.evaluate(LATE_BANNER, True)
            with pytest.raises(Obscured, match="visibility: visible"):
                collector.capture()
        finally:
            browser.close()
        assert site.answer_touches() == []


def test_wrong_credentials_stop_the_run_with_a_clear_error(tmp_path):
    with GeoSite(seed=4) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_rounds=1)
        cfg.timeouts.action_s = 5.0  # how long a sign-in may take to leave the sign-in page
        with pytest.raises(LoginFailed, match="wrong credentials"):
            run_collect(cfg, ("test@example.com", "not-the-password"), progress=False)
        assert not cfg.storage_state_path.exists() and pairs(cfg.pairs_dir) == {}
