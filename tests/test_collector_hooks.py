"""The collector's hooks on the rebuilt GeoSite (random class hashes), in real Chromium: games start from the
mode's page by data-qa buttons, the visible English texts from the home page are the last resort, and the
class-prefix fallbacks alone play a round."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from dataprep.collect.config import CHROMIUM, CHROMIUM_ARGS, Selectors
from dataprep.collect.site import NavigationError, Site
from tests.collector_helpers import CREDENTIALS, VIEWPORT, best_matching_place, fast_config
from tests.geosite import GeoSite

pytestmark = pytest.mark.e2e


@pytest.fixture()
def signed_in(tmp_path):
    """(site, collector) signed in through the sign-in form (the collector's own login), in a fresh browser."""
    with GeoSite(seed=11) as site, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            cfg = fast_config(site.url, tmp_path)
            collector = Site(browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]}), cfg)
            collector.login(*CREDENTIALS)
            site.requests.clear()
            yield site, collector
        finally:
            browser.close()


def pages_visited(site) -> list[str]:
    return [p for m, p in site.requests if m == "GET" and not p.startswith(("/static/", "/api/", "/pano/", "/favicon"))]


def test_a_game_starts_from_its_page_by_data_qa_and_by_text_only_as_a_last_resort(signed_in):
    site, collector = signed_in
    cfg = collector.cfg
    cfg.timeouts.action_s = 3.0
    game_id = collector.start_game(cfg.modes["singleplayer"])
    assert game_id in site.games and pages_visited(site) == ["/maps/world", f"/game/{game_id}"]

    site.requests.clear()
    mode = cfg.modes["singleplayer"]
    mode.steps = [["[data-qa=play-map-that-moved]"]]   # a redesign: the button is gone
    game_id = collector.start_game(mode)
    assert pages_visited(site) == ["/maps/world", "/", "/singleplayer", "/maps/world", f"/game/{game_id}"]

    mode.text_steps = ["Singleplayer", "A map that does not exist"]
    with pytest.raises(NavigationError, match="A map that does not exist"):
        collector.start_game(mode)


def test_the_class_prefix_fallbacks_alone_play_a_round(signed_in, tmp_path):
    site, collector = signed_in
    cfg = collector.cfg
    defaults = Selectors()
    for hook in ("panorama", "guess_map"):
        fallbacks = [s for s in getattr(defaults, hook) if "data-qa" not in s]
        assert fallbacks and all("__*" in s or "widget-scene-canvas" in s for s in fallbacks)
        setattr(cfg.selectors, hook, fallbacks)
    game_id = collector.start_game(cfg.modes["singleplayer"])
    assert collector.round_number() == (1, 5)
    frame = collector.capture()
    (tmp_path / "shot.png").write_bytes(frame.png)
    shown, diff = best_matching_place(tmp_path / "shot.png", site.places)
    assert shown.id == site.games[game_id].places[0].id and diff < 25, (shown.id, diff)
    lat, lng = collector.guess_and_read()
    place = site.games[game_id].places[0]
    assert (round(lat, 4), round(lng, 4)) == (round(place.lat, 4), round(place.lng, 4))
    collector.next_round(1)
    assert collector.round_number() == (2, 5)
    assert site.answer_touches() == []
