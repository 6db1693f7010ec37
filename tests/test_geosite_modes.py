"""The rebuilt GeoSite: the real page's structure (../shared/reference/geoguessr-dom.md), per mode, over HTTP."""

from __future__ import annotations

import re

import pytest

from tests.geosite import GeoSite
from tests.test_extension_geosite import Client

# class prefixes (module_local__) each mode's game page must have, beside its data-qa hooks
MODE_PAGES = {
    "/maps/world/start": ("/game/", ["in-game_root__", "game_canvas__", "game_panorama__", "game_status__",
                                     "status_section__", "status_label__", "status_value__", "game_guessMap__",
                                     "guess-map_guessMap__"]),
    "/multiplayer/duels/join": ("/multiplayer/duels/", ["in-game_root__", "game-panorama_panorama__",
                                                        "game-panorama_panoramaCanvas__", "guess-map_guessMap__",
                                                        "guess-map_canvasContainer__", "guess-map_canvas__",
                                                        "hud-2_", "health-bar-2_", "round-score-2_"]),
    "/battle-royale/join": ("/battle-royale/", ["in-game_root__", "game-panorama_panorama__",
                                                "game-panorama_panoramaCanvas__"]),
}
HASHED = re.compile(r"\b([a-z][\w-]*_[A-Za-z0-9]+)__([A-Za-z0-9]{5})\b")


def classes(html: str) -> dict[str, str]:
    """module_local → hash, of every CSS-module class in `html`."""
    return dict(HASHED.findall(html))


@pytest.fixture()
def client():
    with GeoSite() as site:
        c = Client(site)
        c.sign_in()
        yield c


@pytest.mark.parametrize("start", list(MODE_PAGES))
def test_each_mode_has_the_hooks_of_the_real_page(client, start):
    prefix, modules = MODE_PAGES[start]
    status, url, page = client.request(start, {})
    assert status == 200 and url.startswith(client.site.url + prefix), url
    assert '<div id="__next">' in page and "__~" not in page
    for qa in ("panorama", "round-number", "compass"):
        assert f'data-qa="{qa}"' in page
    # Google's canvas inside the panorama, nested as Maps nests it
    pano = page[page.index('data-qa="panorama"'):]
    assert re.match(r'data-qa="panorama"[^>]*>\s*<div class="gm-style".*?<div class="widget-scene".*?'
                    r'<canvas class="widget-scene-canvas', pano, re.S)
    # the round box's second child reads "N / 5"
    assert re.search(r'data-qa="round-number"><div[^>]*>Round</div>\s*<div[^>]*>1 / 5</div>', page)
    hashed = classes(page)
    for module in modules:
        assert any(f"{name}__".startswith(module) for name in hashed), module
    if prefix != "/battle-royale/":
        assert 'data-qa="guess-map"' in page and 'data-qa="perform-guess"' in page


def test_class_hashes_differ_per_class_and_per_server_start():
    def served():
        with GeoSite() as site:
            c = Client(site)
            c.sign_in()
            page = c.request("/maps/world/start", {})[2]
            css = c.request("/static/site.css")[2]
            return classes(page), classes(css)

    (page1, css1), (page2, _) = served(), served()
    assert len(page1) > 20 and len(set(page1.values())) > len(page1) * 0.9   # (collisions are possible, rare)
    assert {k: css1[k] for k in page1.keys() & css1.keys()} == {k: page1[k] for k in page1.keys() & css1.keys()}
    same = [k for k in page1.keys() & page2.keys() if page1[k] == page2[k]]
    assert len(same) < 3, same


def test_the_older_duels_path_serves_the_same_game(client):
    _, url, _ = client.request("/multiplayer/duels/join", {})
    game_id = url.rsplit("/", 1)[1]
    status, _, page = client.request(f"/duels/{game_id}")
    assert status == 200 and "game-panorama_panoramaCanvas__" in page


def test_break_renames_one_hook_everywhere_it_is_served(client):
    _, url, _ = client.request("/maps/world/start", {})
    path = url.removeprefix(client.site.url)
    page = client.request(path + "?break=panorama")[2]
    assert 'data-qa="panorama"' not in page and "widget-scene-canvas" not in page and "game_canvas__" not in page
    assert 'data-qa="panorama-renamed"' in page and 'data-qa="round-number"' in page
    assert '/static/game.js?break=panorama' in page
    script = client.request("/static/game.js?break=panorama")[2]
    assert 'data-qa="panorama-renamed"' in script and 'data-qa="panorama"' not in script
    status, _, body = client.request(path + "?break=nonsense")
    assert status == 400 and "known: panorama" in body


def test_every_menu_link_leads_to_a_page(client):
    """The menus link only what the site serves (the home page once linked /party, a 404)."""
    seen, todo = set(), ["/"]
    while todo:
        path = todo.pop()
        seen.add(path)
        status, _, page = client.request(path)
        assert status == 200, path
        if path in ("/", "/singleplayer", "/multiplayer"):   # the menus; the pages they lead to start games
            todo += [h for h in re.findall(r'<a [^>]*href="(/[^"]*)"', page) if h not in seen and h not in todo]
    assert {"/singleplayer", "/multiplayer", "/maps/world", "/multiplayer/duels", "/battle-royale"} <= seen, seen
