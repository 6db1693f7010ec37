"""The collector's settings: one model tree on runtime.config (unknown keys refused, one loader), its
scalar fields the command line's options.

In-game elements are found by the hooks maintained GeoGuessr tools rely on
(../shared/reference/geoguessr-dom.md): each `Selectors` field is a list tried in order, the `data-qa`
hook first, Google's `canvas.widget-scene-canvas`, then CSS-module classes by prefix (`.name__*`, never
the hash that changes with every deploy). A game is started from its page's URL by `data-qa` buttons;
the visible English texts clicked from the home page (`ModeConfig.text_steps`) are the last resort. All of
it is data, so a site redesign is a JSON edit, not a code change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from runtime.config import Config, load_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class ModeConfig(Config):
    start_path: str = "/"  # the page the steps start from
    # each step: selectors tried in order, the first visible one is clicked; a plain string is a visible text
    steps: list[list[str] | str] = Field(default_factory=list)
    text_steps: list[str] = Field(default_factory=list)  # last resort: visible texts clicked from the home page
    game_url: str = r"/game/([^/?#]+)"  # regex on the game page's URL; group 1 is the game id


DEFAULT_MODES = {
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
MODES = tuple(DEFAULT_MODES)


def _default_modes() -> dict[str, ModeConfig]:
    # copies: a config that edits its modes must not edit the defaults
    return {name: m.model_copy(deep=True) for name, m in DEFAULT_MODES.items()}

_PREFIX = re.compile(r"\.([A-Za-z0-9_-]+)\*")


def expand_selector(selector: str) -> str:
    """`.game_canvas__*` → any element with a class beginning `game_canvas__` (as the extension's selectors)."""
    return _PREFIX.sub(lambda m: f':is([class^="{m.group(1)}"],[class*=" {m.group(1)}"])', selector)


# a plain string in a JSON config is a list of one
SelectorList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


def _sel(*alternatives: str):
    return Field(default_factory=lambda: list(alternatives))


class Selectors(Config):
    """Each a list of selectors tried in order."""

    cookie_accept: SelectorList = _sel("#onetrust-accept-btn-handler")
    email: SelectorList = _sel("input[name=email]")
    password: SelectorList = _sel("input[name=password]")
    login_submit: SelectorList = _sel("button[type=submit]")
    panorama: SelectorList = _sel("[data-qa=panorama] canvas.widget-scene-canvas", "canvas.widget-scene-canvas",
                                  ".game-panorama_panorama__* canvas", ".game_canvas__* canvas")
    round_number: SelectorList = _sel("[data-qa=round-number]")
    guess_map: SelectorList = _sel("[data-qa=guess-map]", ".guess-map_guessMap__*", ".game_guessMap__*")
    guess_button: SelectorList = _sel("[data-qa=perform-guess]")
    # The correct location's coordinates as text: the local site's results screen writes them out; the real
    # one shows a pin (`correct-location-marker`) only, so on geoguessr.com this needs a config of its own.
    correct_location: SelectorList = _sel("[data-qa=correct-location]")
    next_round: SelectorList = _sel("[data-qa=close-round-result]")
    round_country: SelectorList = _sel("[data-qa=round-result-country]")
    rate_limit_text: str = "Too many requests"


class Timeouts(Config):
    action_s: float = 15.0  # one click / navigation / wait for an element
    render_s: float = 20.0  # the panorama must be non-blank and stable within this
    black_s: float = 4.0  # a frame that stays uniformly black this long is a black frame
    br_round_s: float = 120.0  # a battle-royale round must show its country within this
    watchdog_s: float = 90.0  # a worker silent this long is hung: its process tree is killed
    backoff_s: float = 5.0  # first rate-limit pause; doubles per consecutive hit
    backoff_max_s: float = 600.0


class CollectConfig(Config):
    base_url: str = Field("https://www.geoguessr.com", description="site to play (http or https)")
    out: Path = Field(Path("work/collect"), description="output folder: pairs in OUT/pairs, run state in OUT/state")
    mode: str = Field("singleplayer", description=f"a key of `modes` ({', '.join(MODES)} unless the config adds one)")
    workers: int = Field(2, ge=1, description="parallel browsers")
    max_rounds: int | None = Field(None, ge=0, description="stop after saving this many pairs (none: no limit)")
    max_minutes: float | None = Field(None, gt=0, description="stop after this many minutes")
    headless: bool = Field(True, description="hide the browsers")
    storage_state: Path | None = Field(None, description="Playwright storage state (none: OUT/state/storage_state.json)")
    source: str | None = Field(None, description="the pairs' `source` field (none: the site's host name)")
    signin_path: str = "/signin"
    viewport: tuple[int, int] = (1280, 800)
    blank_std: float = 6.0  # below this pixel standard deviation (0-255) a frame is blank
    stable_diff: float = 2.0  # mean absolute difference (0-255) under which two reads agree
    max_restarts_per_min: int = 10  # a worker crashing faster than this is left down
    # a config's modes are added to (or replace, by name) the default ones
    modes: dict[str, ModeConfig] = Field(default_factory=_default_modes)
    selectors: Selectors = Field(default_factory=Selectors)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("http", "https"):
            raise ValueError(f"must be http(s): {v!r}")
        return v

    @field_validator("modes", mode="before")
    @classmethod
    def _with_default_modes(cls, v):
        return {**_default_modes(), **v} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _mode_is_configured(self) -> CollectConfig:
        if self.mode not in self.modes:
            raise ValueError(f"mode {self.mode!r} is not configured (known: {', '.join(self.modes)})")
        return self

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

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict, where: str = "collector config") -> CollectConfig:
        return load_config(cls, d, where)

    @classmethod
    def from_json(cls, path: Path | str) -> CollectConfig:
        return load_config(cls, path)
