"""The collector's settings: one dataclass tree, loadable from JSON, overridable from the CLI.

In-game elements are found by the hooks maintained GeoGuessr tools rely on
(../shared/reference/geoguessr-dom.md): each `Selectors` field is a list tried in order, the `data-qa`
hook first, Google's `canvas.widget-scene-canvas`, then CSS-module classes by prefix (`.name__*`, never
the hash that changes with every deploy). A game is started from its page's URL by `data-qa` buttons;
the visible English texts clicked from the home page (`ModeConfig.text_steps`) are the last resort. All of
it is data, so a site redesign is a JSON edit, not a code change.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MODES = ("singleplayer", "br-countries")


@dataclass
class ModeConfig:
    start_path: str = "/"  # the page the steps start from
    # each step: selectors tried in order, the first visible one is clicked; a plain string is a visible text
    steps: list[list[str] | str] = field(default_factory=list)
    text_steps: list[str] = field(default_factory=list)  # last resort: visible texts clicked from the home page
    game_url: str = r"/game/([^/?#]+)"  # regex on the game page's URL; group 1 is the game id


_PREFIX = re.compile(r"\.([A-Za-z0-9_-]+)\*")


def expand_selector(selector: str) -> str:
    """`.game_canvas__*` → any element with a class beginning `game_canvas__` (as the extension's selectors)."""
    return _PREFIX.sub(lambda m: f':is([class^="{m.group(1)}"],[class*=" {m.group(1)}"])', selector)


def _sel(*alternatives: str):
    return field(default_factory=lambda: list(alternatives))


@dataclass
class Selectors:
    """Each a list of selectors tried in order (a plain string in a JSON config is a list of one)."""

    cookie_accept: list[str] = _sel("#onetrust-accept-btn-handler")
    email: list[str] = _sel("input[name=email]")
    password: list[str] = _sel("input[name=password]")
    login_submit: list[str] = _sel("button[type=submit]")
    panorama: list[str] = _sel("[data-qa=panorama] canvas.widget-scene-canvas", "canvas.widget-scene-canvas",
                               ".game-panorama_panorama__* canvas", ".game_canvas__* canvas")
    round_number: list[str] = _sel("[data-qa=round-number]")
    guess_map: list[str] = _sel("[data-qa=guess-map]", ".guess-map_guessMap__*", ".game_guessMap__*")
    guess_button: list[str] = _sel("[data-qa=perform-guess]")
    # The correct location's coordinates as text: the local site's results screen writes them out; the real
    # one shows a pin (`correct-location-marker`) only, so on geoguessr.com this needs a config of its own.
    correct_location: list[str] = _sel("[data-qa=correct-location]")
    next_round: list[str] = _sel("[data-qa=close-round-result]")
    round_country: list[str] = _sel("[data-qa=round-result-country]")
    rate_limit_text: str = "Too many requests"


@dataclass
class Timeouts:
    action_s: float = 15.0  # one click / navigation / wait for an element
    render_s: float = 20.0  # the panorama must be non-blank and stable within this
    black_s: float = 4.0  # a frame that stays uniformly black this long is a black frame
    br_round_s: float = 120.0  # a battle-royale round must show its country within this
    watchdog_s: float = 90.0  # a worker silent this long is hung: its process tree is killed
    backoff_s: float = 5.0  # first rate-limit pause; doubles per consecutive hit
    backoff_max_s: float = 600.0


@dataclass
class CollectConfig:
    base_url: str = "https://www.geoguessr.com"
    out: Path = Path("work/collect")  # pairs go to out/pairs, run state to out/state
    mode: str = "singleplayer"
    workers: int = 2
    max_rounds: int | None = None  # pairs to save in this run; None: no limit
    max_minutes: float | None = None
    headless: bool = True
    storage_state: Path | None = None  # default: out/state/storage_state.json
    source: str | None = None  # the pairs' `source`; default: the site's host name
    signin_path: str = "/signin"
    viewport: tuple[int, int] = (1280, 800)
    blank_std: float = 6.0  # below this pixel standard deviation (0-255) a frame is blank
    stable_diff: float = 2.0  # mean absolute difference (0-255) under which two reads agree
    max_restarts_per_min: int = 10  # a worker crashing faster than this is left down
    modes: dict[str, ModeConfig] = field(
        default_factory=lambda: {
            "singleplayer": ModeConfig(
                start_path="/maps/world",
                steps=[["[data-qa=play-map]", 'text="Play"'], ["[data-qa=start-game-button]", 'text="Start game"']],
                text_steps=["Singleplayer", "World", "Play", "Start game"],
                game_url=r"/game/([^/?#]+)",
            ),
            "br-countries": ModeConfig(
                start_path="/battle-royale",
                steps=[["[data-qa=join-game]", 'text="Join"']],
                text_steps=["Multiplayer", "Battle Royale Countries", "Join"],
                game_url=r"/battle-royale/([^/?#]+)",
            ),
        }
    )
    selectors: Selectors = field(default_factory=Selectors)
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def pairs_dir(self) -> Path:
        return Path(self.out) / "pairs"

    @property
    def state_dir(self) -> Path:
        return Path(self.out) / "state"

    @property
    def storage_state_path(self) -> Path:
        return Path(self.storage_state) if self.storage_state else self.state_dir / "storage_state.json"

    @property
    def source_name(self) -> str:
        return self.source or (urlsplit(self.base_url).hostname or "unknown")

    def validate(self) -> None:
        if self.mode not in self.modes:
            raise ValueError(f"mode {self.mode!r} is not configured (known: {', '.join(self.modes)})")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be http(s): {self.base_url!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["storage_state"] = str(self.storage_state) if self.storage_state else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CollectConfig:
        return _build(cls, d)

    @classmethod
    def from_json(cls, path: Path | str) -> CollectConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a collector config: {e}") from e


def _build(cls, d: dict):
    """Nested dataclass from a dict; unknown keys are an error (a typo must not pass silently)."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    defaults = cls()
    kwargs = {}
    for name, value in d.items():
        current = getattr(defaults, name)
        if is_dataclass(current):
            value = _build(type(current), value)
        elif isinstance(current, list) and cls is Selectors and isinstance(value, str):
            value = [value]
        elif name == "modes":
            value = {**current, **{k: _build(ModeConfig, v) for k, v in value.items()}}
        elif name in ("out", "storage_state") and value is not None:
            value = Path(value)
        elif name == "viewport":
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
