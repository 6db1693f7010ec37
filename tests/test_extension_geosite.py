"""The local GeoGuessr-like site (tests/geosite): its flows and faults over real HTTP, as the browser sees them."""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest

from tests import bidi
from tests.browsers import CHROMIUM, EXECUTABLES
from tests.geosite import GeoSite
from tests.geosite.server import country_of


class Client:
    """A cookie-keeping HTTP client that follows redirects, like a browser."""

    def __init__(self, site: GeoSite):
        self.site = site
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: dict | None = None, json_body: dict | None = None):
        body, headers = None, {}
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        if json_body is not None:
            body, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
        req = urllib.request.Request(self.site.url + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.geturl(), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.geturl(), e.read().decode()

    def sign_in(self) -> None:
        status, url, _ = self.request("/signin", {"email": self.site.email, "password": self.site.password})
        assert status == 200 and urllib.parse.urlsplit(url).path == "/"

    def start_game(self, path: str = "/maps/world/start") -> tuple[int, str]:
        status, url, _ = self.request(path, {})
        return status, urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]


@pytest.fixture()
def site():
    with GeoSite(hash="Zz9Q1", br_round_seconds=0.4) as s:
        yield s


def test_signin_required_and_wrong_password_refused(site):
    c = Client(site)
    status, url, body = c.request("/singleplayer")
    assert url.endswith("/signin") and 'id="onetrust-banner-sdk"' in body and "Accept All Cookies" in body
    status, _, body = c.request("/signin", {"email": site.email, "password": "nope"})
    assert status == 401 and 'data-qa="signin-error"' in body
    assert c.request("/api/play/x")[0] == 401
    c.sign_in()
    assert any(k.name == "_ncfa" for k in c.jar)
    status, url, body = c.request("/singleplayer")
    assert status == 200 and url.endswith("/singleplayer") and ">World<" in body


def test_cookie_banner_stays_until_accepted(site):
    c = Client(site)
    c.sign_in()
    assert 'id="onetrust-banner-sdk"' in c.request("/")[2]
    c.jar.set_cookie(http.cookiejar.Cookie(0, "OptanonAlertBoxClosed", "1", None, False, "127.0.0.1", False, False,
                                           "/", True, False, None, False, None, None, {}))
    assert 'id="onetrust-banner-sdk"' not in c.request("/")[2]


def test_singleplayer_game_keeps_the_answer_until_the_guess(site):
    c = Client(site)
    c.sign_in()
    status, game_id = c.start_game()
    assert status == 200 and re.fullmatch(r"[A-Za-z0-9]{16}", game_id)
    _, _, page = c.request(f"/game/{game_id}")
    for hook in ('data-qa="panorama"', 'data-qa="guess-map"', 'data-qa="perform-guess"', 'data-qa="round-number"',
                 "game_layout__Zz9Q1", "game_panorama__Zz9Q1", "game_canvas__Zz9Q1"):
        assert hook in page
    game = site.games[game_id]
    answer = game.places[0]
    # the answer is in __NEXT_DATA__ only (like the real site), nowhere else in the page or the play API
    next_data = re.search(r'<script id="__NEXT_DATA__"[^>]*>(.*?)</script>', page, re.S)
    assert f"{answer.lat}" in next_data.group(1)
    assert f"{answer.lat}" not in page.replace(next_data.group(0), "")
    state = json.loads(c.request(f"/api/play/{game_id}")[2])
    assert state["round"] == 1 and state["total"] == 5 and "result" not in state and str(answer.lat) not in str(state)
    points = []
    for n in range(1, 6):
        state = json.loads(c.request(f"/api/play/{game_id}/guess", json_body={"lat": 10.0, "lng": 20.0})[2])
        place = game.places[n - 1]
        assert state["phase"] == ("finished" if n == 5 else "result")
        assert state["result"]["correct"] == {"lat": place.lat, "lng": place.lng}
        points.append(state["result"]["points"])
        state = json.loads(c.request(f"/api/play/{game_id}/next", json_body={})[2])
        assert state["round"] == min(n + 1, 5)
    assert state["score"] == sum(points)
    assert c.request(f"/api/play/{game_id}/guess", json_body={"lat": "x"})[0] == 400
    assert site.answer_touches() == []
    assert c.request(f"/api/game/{game_id}")[0] == 200
    assert site.answer_touches() == [f"GET /api/game/{game_id}"]


def test_games_are_deterministic_from_the_seed():
    def two_games(seed):
        with GeoSite(seed=seed) as s:
            c = Client(s)
            c.sign_in()
            ids = [c.start_game()[1] for _ in range(2)]
            return ids, [[p.id for p in s.games[i].places] for i in ids]

    a, b, other = two_games(7), two_games(7), two_games(8)
    assert a == b and a != other and a[0][0] != a[0][1]


def test_faults_ratelimit_and_collision():
    with GeoSite(ratelimit=2, collide=True) as s:
        c = Client(s)
        c.sign_in()
        status, _, body = c.request("/maps/world/start", {})
        assert status == 429 and "Too many requests" in body
        assert c.start_game()[0] == 429
        a, b, d = c.start_game(), c.start_game(), c.start_game()
        assert a[0] == b[0] == d[0] == 200
        assert a[1] == b[1] != d[1]


def test_fault_flags_reach_the_page():
    with GeoSite(black=True) as s:
        c = Client(s)
        c.sign_in()
        _, game_id = c.start_game()
        page = c.request(f"/game/{game_id}?hang=1")[2]
        config = json.loads(re.search(r"window.__GEOSITE__ = (\{.*?\});", page).group(1))
        assert config["black"] is True and config["hang"] is True


def test_battle_royale_reveals_the_country_only_after_the_round(site):
    c = Client(site)
    c.sign_in()
    status, game_id = c.start_game("/battle-royale/join")
    assert status == 200 and "/battle-royale/" + game_id in [p for _, p in site.requests]
    first = json.loads(c.request(f"/api/br/{game_id}/round/1")[2])
    assert first["total"] == 5 and first["image"].startswith("/pano/")
    assert c.request(f"/api/br/{game_id}/round/1/result")[0] == 425
    time.sleep(0.4)
    result = json.loads(c.request(f"/api/br/{game_id}/round/1/result")[2])
    place = site.games[game_id].places[0]
    assert (result["country"], result["name"]) == (place.country, place.country_name)


@pytest.mark.parametrize(("lat", "lng", "code"), [
    (48.8566, 2.3522, "FR"), (-29.5, 28.2, "LS"), (35.6762, 139.6503, "JP"), (-33.87, 151.21, "AU"),
    (40.7128, -74.006, "US"), (-22.9, -43.2, "BR"),
])
def test_country_lookup(lat, lng, code):
    assert country_of(lat, lng)[0] == code


@contextmanager
def plain_page(name: str, tmp_path):
    """A tab of `name`'s headless browser without the extension."""
    if name == "chromium":
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = p.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = b.new_page(viewport={"width": 800, "height": 450})
            try:
                yield page, page.context.add_cookies
            finally:
                b.close()
    else:
        ff = bidi.Firefox(tmp_path / "profile", "none@example.org", viewport=(800, 450)).start()
        try:
            yield ff.new_page(), ff.add_cookies
        finally:
            ff.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_the_site_needs_preserve_drawing_buffer_which_the_extension_forces(site, name, tmp_path):
    """Without the extension the site's WebGL frame cannot be read back once shown (as on the real site),
    in either browser."""
    if not EXECUTABLES[name].exists():
        pytest.skip(f"needs {name} at {EXECUTABLES[name]}")
    with plain_page(name, tmp_path) as (page, add_cookies):
        add_cookies([{"name": "_ncfa", "value": site.new_session(), "url": site.url}])
        page.goto(site.url + "/maps/world")
        page.get_by_text("Play", exact=True).click()
        page.get_by_text("Start game").click()
        page.wait_for_selector('[data-qa="panorama"][data-loaded="true"]')
        time.sleep(0.3)
        std = page.evaluate("""() => { const c = document.querySelector('[data-qa="panorama"] canvas');
            const t = document.createElement('canvas'); t.width = 64; t.height = 36;
            const x = t.getContext('2d'); x.drawImage(c, 0, 0, 64, 36);
            const d = x.getImageData(0, 0, 64, 36).data; let s = 0, s2 = 0;
            for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; }
            const n = d.length / 4; return Math.sqrt(s2 / n - (s / n) ** 2); }""")
    assert std < 1, "the site's canvas should read back blank without preserveDrawingBuffer"
