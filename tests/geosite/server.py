"""A local GeoGuessr-like site: the stand-in for geoguessr.com in the extension's and the collector's tests.

It imitates the real site's hooks (hashed CSS-module classes, `data-qa` attributes, a WebGL panorama
created without `preserveDrawingBuffer`, a cookie banner, sign-in, a `__NEXT_DATA__` tag and an
`/api/game/<id>` endpoint that hold the answer) so that code written against it meets the same
problems as on the real site. Its contract (routes, hooks, query flags) is
the package's docstring, tests/geosite/__init__.py. Stdlib only, so it starts in milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import mimetypes
import random
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from companion.world import world

from .pages import (
    br_game_page,
    duels_page,
    game_page,
    home_page,
    map_page,
    message_page,
    next_data_script,
    signin_page,
    simple_list_page,
)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
FIXTURE_IMAGES = HERE.parent / "fixtures" / "images"
ID_ALPHABET = string.ascii_letters + string.digits
CLASS_PLACEHOLDER = re.compile(r"([A-Za-z][\w-]*)__~")   # `module_local__~` in pages and static files

# The game modes and the URL paths of their game pages (stable: the fair-play defaults detect modes by them).
# duels: the real site moved duels under /multiplayer/ in 2026; the older /duels/<id> serves the same page.
GAME_ROUTES = {"game": "classic", "duels": "duels", "battle-royale": "battle-royale"}

# `?break=<hook>` renames one hook everywhere it is served (page, CSS, JS), as a redesign would: its data-qa
# and every class the extension's and collector's defaults could fall back on. The site keeps working.
BREAKS = {
    "panorama": [('data-qa="panorama"', 'data-qa="panorama-renamed"'),
                 ("widget-scene-canvas", "widget-scene-renamed-canvas"), ("game_canvas__", "game-renamed_canvas__"),
                 ("game_panorama__", "game-renamed_panorama__"), ("game-panorama_", "game-panorama-renamed_")],
    "round-number": [('data-qa="round-number"', 'data-qa="round-number-renamed"')],
    "guess-map": [('data-qa="guess-map"', 'data-qa="guess-map-renamed"'), ("guess-map_", "guess-map-renamed_"),
                  ("game_guessMap__", "game-renamed_guessMap__")],
    "compass": [('data-qa="compass"', 'data-qa="compass-renamed"'), ("compass_", "compass-renamed_")],
}
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Place:
    """One round's location: the image shown and the answer the site keeps to itself."""

    id: str
    path: Path
    lat: float
    lng: float
    country: str        # ISO alpha-2
    country_name: str


@dataclass
class Game:
    id: str
    places: list[Place]
    round: int = 0                      # 0-based index of the current round
    guesses: list[dict] = field(default_factory=list)
    round_started: dict[int, float] = field(default_factory=dict)   # battle royale: round → start time
    fault: str | None = None            # "hang" | "black" for this game only (GeoSite's `game_faults`)

    @property
    def finished(self) -> bool:
        return len(self.guesses) >= len(self.places)


@functools.lru_cache(maxsize=4096)
def country_of(lat: float, lng: float) -> tuple[str, str]:
    """(code, name) of the country at a round's coordinates: the companion's own outline and lookup, so the
    site and Play agree on every answer."""
    hit = world().country_at(lat, lng)
    if hit is None:
        raise ValueError(f"no country at or near {lat}, {lng}: give the image's sidecar a country and country_name")
    return hit


def load_places(images: list[Path | str] | None = None) -> list[Place]:
    """Round images with their sidecar JSON (lat/lng; optional country/country_name)."""
    paths = sorted(FIXTURE_IMAGES.glob("*.jpg")) if images is None else [Path(p) for p in images]
    if not paths:
        raise ValueError("GeoSite needs at least one image")
    places = []
    for path in paths:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        code, name = meta.get("country"), meta.get("country_name")
        if not (code and name):
            code, name = country_of(float(meta["lat"]), float(meta["lng"]))
        places.append(Place(str(meta.get("id", path.stem)), path, float(meta["lat"]), float(meta["lng"]), code, name))
    return places


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lng2 - lng1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def points_for(distance_km: float) -> int:
    return round(5000 * math.exp(-distance_km / 1492.7))


class GeoSite:
    """The site, served from a background thread on 127.0.0.1.

    Faults for the collector's tests: `hang` (the panorama never renders), `black` (it renders an
    all-black frame), `ratelimit=N` (the first N game starts answer HTTP 429), `collide` (each game-id
    is handed out twice, so two workers land in the same game). `hang`/`black` also work per page as
    query parameters (`/game/<id>?black=1`), and per game: `game_faults={2: "hang", 3: "black"}` gives
    the 2nd and 3rd games started that fault (the others play normally).
    """

    def __init__(
        self,
        images: list[Path | str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 0,
        hash: str | None = None,
        email: str = "test@example.com",
        password: str = "secret",
        rounds: int = 5,
        render_delay_ms: tuple[int, int] = (200, 800),
        br_round_seconds: float = 3.0,
        br_result_seconds: float = 1.5,
        hang: bool = False,
        black: bool = False,
        ratelimit: int = 0,
        collide: bool = False,
        game_faults: dict[int, str] | None = None,
    ):
        self.places = load_places(images)
        self.host, self.port = host, port
        self.seed = seed
        self.hash = hash                               # one suffix for every class; None: a random one per class
        self._class_salt = secrets.token_bytes(16)
        self.build_id = secrets.token_hex(8)
        self.email, self.password = email, password
        self.rounds = rounds
        self.render_delay_ms = render_delay_ms
        self.br_round_seconds, self.br_result_seconds = br_round_seconds, br_result_seconds
        self.hang, self.black = hang, black
        self.ratelimit_left = ratelimit
        self.collide = collide
        self.game_faults = dict(game_faults or {})
        self.sessions: set[str] = set()
        self.games: dict[str, Game] = {}
        self.requests: list[tuple[str, str]] = []      # (method, path) of every request, in order
        self.events: list[dict] = []                   # reports from the page's traps (e.g. __NEXT_DATA__ read)
        self._ids = random.Random(seed)
        self._pending_id: str | None = None            # collide mode: the id to hand out once more
        self._pano_key = secrets.token_bytes(16)
        self._panos: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def cls(self, name: str) -> str:
        """The served name of CSS-module class `name` (`game_canvas` → `game_canvas__Ab3x9`): each class has its
        own 5-character hash, new at each server start, like the real site's classes after a deploy."""
        if self.hash:
            return f"{name}__{self.hash}"
        digest = hmac.new(self._class_salt, name.encode(), hashlib.sha256).digest()
        return f"{name}__" + "".join(ID_ALPHABET[b % len(ID_ALPHABET)] for b in digest[:5])

    def render(self, text: str, breaks: tuple[str, ...] = ()) -> str:
        """A page or static file as served: the broken hooks renamed, then every `module_local__~` class hashed."""
        for hook in breaks:
            for old, new in BREAKS[hook]:
                text = text.replace(old, new)
        return CLASS_PLACEHOLDER.sub(lambda m: self.cls(m.group(1)), text)

    # lifecycle ------------------------------------------------------------------------------------
    def start(self) -> GeoSite:
        handler = type("Handler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="geosite", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GeoSite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # what tests look at ---------------------------------------------------------------------------
    def answer_touches(self) -> list[str]:
        """Every way the answer was reached for: `/api/game/...` requests and `__NEXT_DATA__` reads."""
        with self._lock:
            hits = [f"{m} {p}" for m, p in self.requests if p.startswith("/api/game/")]
            return hits + [f"{e.get('event')}: {e.get('how')} on {e.get('page')}" for e in self.events]

    def new_session(self) -> str:
        """A valid `_ncfa` value, for tests that do not exercise the sign-in form."""
        token = secrets.token_hex(16)
        with self._lock:
            self.sessions.add(token)
        return token

    # game state -----------------------------------------------------------------------------------
    def start_game(self) -> Game | None:
        """A new game, or None when the rate limit fault answers instead."""
        with self._lock:
            if self.ratelimit_left > 0:
                self.ratelimit_left -= 1
                return None
            if self._pending_id is not None:
                game_id, self._pending_id = self._pending_id, None
                return self.games[game_id]
            game_id = "".join(self._ids.choice(ID_ALPHABET) for _ in range(16))
            rng = random.Random(f"{self.seed}:{game_id}")
            if len(self.places) >= self.rounds:
                places = rng.sample(self.places, self.rounds)
            else:
                places = rng.choices(self.places, k=self.rounds)
            game = self.games[game_id] = Game(game_id, places, fault=self.game_faults.get(len(self.games) + 1))
            if self.collide:
                self._pending_id = game_id
            return game

    def pano_url(self, game: Game, index: int) -> str:
        place = game.places[index]
        token = hmac.new(self._pano_key, f"{game.id}:{index}:{place.id}".encode(), hashlib.sha256).hexdigest()[:24]
        with self._lock:
            self._panos[token] = place.path
        return f"/pano/{token}.jpg"

    def play_state(self, game: Game) -> dict:
        """What the singleplayer page may know: never the current round's answer before its guess."""
        index = min(game.round, len(game.places) - 1)
        state = {
            "game": game.id,
            "round": index + 1,
            "total": len(game.places),
            "image": self.pano_url(game, index),
            "score": sum(g["points"] for g in game.guesses),
            "phase": "playing",
        }
        if len(game.guesses) > game.round:           # guessed, result on screen
            state["phase"] = "finished" if game.finished else "result"
            state["result"] = game.guesses[game.round]
        return state

    def guess(self, game: Game, lat: float, lng: float) -> dict:
        with self._lock:
            if len(game.guesses) > game.round:
                return game.guesses[game.round]
            place = game.places[game.round]
            distance = haversine_km(lat, lng, place.lat, place.lng)
            result = {
                "round": game.round + 1,
                "guess": {"lat": lat, "lng": lng},
                "correct": {"lat": place.lat, "lng": place.lng},
                "distance_km": round(distance, 1),
                "points": points_for(distance),
            }
            game.guesses.append(result)
            return result

    def next_round(self, game: Game) -> None:
        with self._lock:
            if len(game.guesses) > game.round and game.round + 1 < len(game.places):
                game.round += 1

    def next_data(self, game: Game, page: str = "/game/[token]") -> dict:
        """Like the real site's `__NEXT_DATA__`: it holds the answer (the extension must never read it)."""
        rounds = [{"lat": p.lat, "lng": p.lng, "panoId": p.id} for p in game.places[: game.round + 1]]
        return {"props": {"pageProps": {"game": {"token": game.id, "round": game.round + 1, "rounds": rounds}}},
                "page": page, "buildId": self.build_id}


class _Handler(BaseHTTPRequestHandler):
    site: GeoSite
    protocol_version = "HTTP/1.1"
    server_version = "GeoSite/1"

    def log_message(self, format, *args):   # noqa: A002 - quiet: tests read site.requests instead
        pass

    # plumbing -------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, text: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, self.site.render(text, self.breaks).encode(), "text/html; charset=utf-8", headers)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": location, **(headers or {})})

    def _cookies(self) -> dict[str, str]:
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        return {k: m.value for k, m in jar.items()}

    def _body(self) -> bytes:
        return self.body

    def _signed_in(self) -> bool:
        return self._cookies().get("_ncfa") in self.site.sessions

    def _banner(self) -> bool:
        return "OptanonAlertBoxClosed" not in self._cookies()

    def _game(self, game_id: str) -> Game | None:
        return self.site.games.get(game_id)

    # routing --------------------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _route(self, method: str) -> None:
        # read the body first, always: left unread it would prefix the next request on this keep-alive connection
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        self.breaks = tuple(dict.fromkeys(query.get("break", [])))
        unknown = [b for b in self.breaks if b not in BREAKS]
        if unknown:
            self.breaks = ()
            return self._send(400, f"unknown hook to break: {', '.join(unknown)} (known: {', '.join(BREAKS)})\n"
                              .encode(), "text/plain")
        with self.site._lock:
            self.site.requests.append((method, path))
        site = self.site
        parts = [p for p in path.split("/") if p]
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == "/_geosite/log" and method == "POST":
            try:
                event = json.loads(self._body() or b"{}")
            except ValueError:
                event = {"event": "unparseable log"}
            with site._lock:
                site.events.append(event if isinstance(event, dict) else {"event": str(event)})
            return self._send(204, b"", "text/plain")
        if path == "/favicon.ico":
            return self._send(204, b"", "image/x-icon")
        if path == "/signin":
            return self._signin(method)
        if not self._signed_in():
            if path.startswith(("/api/", "/pano/")):
                return self._json({"message": "Unauthorized"}, 401)
            return self._redirect("/signin")
        banner = self._banner()
        if path == "/" and method == "GET":
            return self._html(home_page(banner))
        if path == "/singleplayer":
            return self._html(simple_list_page(banner, "Singleplayer", [("World", "/maps/world")], "map-card"))
        if path == "/multiplayer":
            return self._html(simple_list_page(banner, "Multiplayer", [("Duels", "/multiplayer/duels"),
                                              ("Battle Royale Countries", "/battle-royale")], "game-mode"))
        if path == "/maps/world" and method == "GET":
            return self._html(map_page(banner, title="World", start_action="/maps/world/start",
                                       first_button="Play", second_button="Start game"))
        if path == "/multiplayer/duels" and method == "GET":
            return self._html(map_page(banner, title="Duels", start_action="/multiplayer/duels/join",
                                       first_button="Join", second_button=None))
        if path == "/battle-royale" and method == "GET":
            return self._html(map_page(banner, title="Battle Royale Countries", start_action="/battle-royale/join",
                                       first_button="Join", second_button=None))
        starts = {"/maps/world/start": "/game/", "/multiplayer/duels/join": "/multiplayer/duels/",
                  "/battle-royale/join": "/battle-royale/"}
        if path in starts and method == "POST":
            game = site.start_game()
            if game is None:
                return self._html(message_page(False, "Too many requests",
                                               "Too many requests. Please try again later."), 429,
                                  {"Retry-After": "1"})
            return self._redirect(starts[path] + game.id)
        if parts[:1] == ["multiplayer"] and len(parts) == 3 and parts[1] == "duels":
            parts = parts[1:]
        if len(parts) == 2 and parts[0] in GAME_ROUTES and method == "GET":
            return self._game_page(GAME_ROUTES[parts[0]], parts[1], query)
        if parts[:2] == ["api", "play"] and len(parts) >= 3:
            return self._play_api(method, parts[2:])
        if parts[:2] == ["api", "br"] and len(parts) >= 5 and parts[3] == "round":
            return self._br_api(parts[2], parts[4], parts[5:])
        if parts[:2] == ["api", "game"] and len(parts) == 3:
            game = self._game(parts[2])   # the answer, like the real site's API (requests are recorded)
            if game is None:
                return self._json({"message": "Not found"}, 404)
            return self._json(site.next_data(game)["props"]["pageProps"]["game"])
        if parts[:1] == ["pano"] and len(parts) == 2:
            src = site._panos.get(parts[1].removesuffix(".jpg"))
            if src is None:
                return self._send(404, b"not found", "text/plain")
            return self._send(200, src.read_bytes(), "image/jpeg")
        return self._html(message_page(banner, "Not found", "Page not found."), 404)

    def _game_page(self, mode: str, game_id: str, query: dict[str, list[str]]) -> None:
        site, banner = self.site, self._banner()
        game = self._game(game_id)
        if game is None:
            return self._html(message_page(banner, "Not found", "This game does not exist."), 404)
        config = {
            "game": game.id,
            "mode": mode,
            "renderDelayMs": list(site.render_delay_ms),
            "hang": site.hang or "hang" in query or game.fault == "hang",
            "black": site.black or "black" in query or game.fault == "black",
            "roundSeconds": site.br_round_seconds,
            "resultSeconds": site.br_result_seconds,
        }
        # the static files of this page get the same broken hooks (?break=…) as the page itself
        static_query = "?" + "&".join(f"break={b}" for b in self.breaks) if self.breaks else ""
        page, route = {"classic": (game_page, "/game/[token]"), "duels": (duels_page, "/duels/[id]"),
                       "battle-royale": (br_game_page, "/battle-royale/[id]")}[mode]
        return self._html(page(banner, config, next_data_script(site.next_data(game, route)), static_query))

    def _static(self, name: str) -> None:
        path = (STATIC / name).resolve()
        if STATIC not in path.parents or not path.is_file():
            return self._send(404, b"not found", "text/plain")
        body = path.read_bytes()
        if path.suffix in (".css", ".js"):
            body = self.site.render(body.decode(), self.breaks).encode()
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return self._send(200, body, ctype)

    def _signin(self, method: str) -> None:
        site = self.site
        if method == "GET":
            return self._html(signin_page(self._banner()))
        form = parse_qs(self._body().decode(errors="replace"))
        email, password = form.get("email", [""])[0], form.get("password", [""])[0]
        if email != site.email or password != site.password:
            return self._html(signin_page(self._banner(), error="Wrong email or password."), 401)
        token = site.new_session()
        return self._redirect("/", {"Set-Cookie": f"_ncfa={token}; Path=/; HttpOnly; SameSite=Lax"})

    def _play_api(self, method: str, parts: list[str]) -> None:
        game = self._game(parts[0])
        if game is None:
            return self._json({"message": "Not found"}, 404)
        site = self.site
        action = parts[1] if len(parts) > 1 else ""
        if method == "GET" and action == "":
            return self._json(site.play_state(game))
        if method == "POST" and action == "guess":
            try:
                body = json.loads(self._body())
                lat, lng = float(body["lat"]), float(body["lng"])
                if not (-90 <= lat <= 90 and -180 <= lng <= 180):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self._json({"message": "A guess is {\"lat\": number, \"lng\": number}"}, 400)
            site.guess(game, lat, lng)
            return self._json(site.play_state(game))
        if method == "POST" and action == "next":
            site.next_round(game)
            return self._json(site.play_state(game))
        return self._json({"message": "Not found"}, 404)

    def _br_api(self, game_id: str, round_text: str, rest: list[str]) -> None:
        site = self.site
        game = self._game(game_id)
        if game is None or not round_text.isdigit() or not 1 <= int(round_text) <= len(game.places):
            return self._json({"message": "Not found"}, 404)
        index = int(round_text) - 1
        with site._lock:
            started = game.round_started.setdefault(index, time.monotonic())
        if not rest:
            return self._json({"round": index + 1, "total": len(game.places), "image": site.pano_url(game, index),
                               "seconds": site.br_round_seconds})
        if rest == ["result"]:
            if time.monotonic() - started < site.br_round_seconds - 0.1:
                return self._json({"message": "The round is still running"}, 425)
            place = game.places[index]
            return self._json({"round": index + 1, "country": place.country, "name": place.country_name})
        return self._json({"message": "Not found"}, 404)
