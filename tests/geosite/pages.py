"""HTML of the GeoSite pages, structured like geoguessr.com (../shared/reference/geoguessr-dom.md).

A class written `module_local__~` is a CSS-module class: the server replaces `~` by that class's hash
(random per server start, see `GeoSite.cls`), in these pages and in the static CSS/JS alike.
"""

from __future__ import annotations

import json
from html import escape


def _doc(banner: bool, title: str, body: str, scripts: str = "", in_game: bool = False, query: str = "") -> str:
    cookie_banner = """
<div id="onetrust-banner-sdk" class="otFlat" role="dialog" aria-label="Cookie banner">
  <p>We use cookies to improve your experience. Read our cookie policy.</p>
  <button id="onetrust-pc-btn-handler">Cookie settings</button>
  <button id="onetrust-accept-btn-handler">Accept All Cookies</button>
</div>""" if banner else ""
    # In a game the page is the game alone (no site header), under `in-game_root__` as on the real site.
    header = "" if in_game else """
<header class="header_header__~"><a class="header_logo__~" href="/">GeoSite</a></header>"""
    root = "in-game_root__~" if in_game else "layout_root__~"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - GeoSite</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css{query}"></head>
<body><div id="__next"><div class="{root}">{header}
<main class="layout_main__~">{body}</main></div></div>{cookie_banner}
<script src="/static/common.js"></script>{scripts}
</body></html>"""


def signin_page(banner: bool, error: str | None = None) -> str:
    err = f'<p class="auth_error__~" data-qa="signin-error">{escape(error)}</p>' if error else ""
    body = f"""<section class="auth_card__~"><h1>Log in</h1>{err}
<form method="post" action="/signin" class="auth_form__~">
  <label>Email <input name="email" type="email" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit" data-qa="login-cta" class="button_button__~">Log in</button>
</form></section>"""
    return _doc(banner, "Log in", body)


def home_page(banner: bool) -> str:
    body = """<nav class="home_modes__~">
  <a class="home_mode__~" href="/singleplayer">Singleplayer</a>
  <a class="home_mode__~" href="/multiplayer">Multiplayer</a>
</nav>"""
    return _doc(banner, "Home", body)


def simple_list_page(banner: bool, title: str, links: list[tuple[str, str]], qa: str) -> str:
    items = "".join(f'<a class="{qa.replace("-", "_")}_card__~" data-qa="{qa}" href="{href}">{escape(text)}</a>'
                    for text, href in links)
    return _doc(banner, title, f"<h1>{escape(title)}</h1><div class=\"list_grid__~\">{items}</div>")


def map_page(banner: bool, title: str, start_action: str, first_button: str, second_button: str | None) -> str:
    """A map's or a mode's page: the first button starts directly (multiplayer) or opens the settings step."""
    if second_button is None:
        form = f"""<form method="post" action="{start_action}">
  <button type="submit" class="button_button__~" data-qa="join-game">{escape(first_button)}</button></form>"""
    else:
        form = f"""<button type="button" class="button_button__~" data-qa="play-map"
  onclick="this.hidden=true;document.getElementById('game-settings').hidden=false">{escape(first_button)}</button>
<form id="game-settings" hidden method="post" action="{start_action}" class="settings_step__~">
  <p class="settings_label__~">Default settings: moving allowed, no time limit.</p>
  <button type="submit" class="button_button__~" data-qa="start-game-button">{escape(second_button)}</button>
</form>"""
    return _doc(banner, title, f"<h1>{escape(title)}</h1>{form}")


def message_page(banner: bool, title: str, text: str) -> str:
    return _doc(banner, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def next_data_script(data: dict) -> str:
    # "</" cannot end the script early once escaped
    return ('<script id="__NEXT_DATA__" type="application/json">'
            + json.dumps(data).replace("</", "<\\/") + "</script>")


def _street_view() -> str:
    """Google's street-view markup, nested as Maps nests it: the WebGL canvas is `canvas.widget-scene-canvas`
    (Google's own hashed-looking class beside it changed over the years; `widget-scene-canvas` did not). Google's
    own controls (the pegman) are off: GeoGuessr's panorama shows none."""
    return """<div class="gm-style" style="position:absolute;inset:0">
      <div tabindex="0" aria-label="Street View" aria-roledescription="panorama" role="region" class="gm-svpc-region">
        <div class="widget-scene" style="position:absolute;inset:0">
          <canvas class="widget-scene-canvas mapsConsumerUiSceneCoreScene__canvas" tabindex="0"
            aria-label="Street view"></canvas>
        </div>
      </div>
      <div class="gm-style-cc"><span>Imagery ©2026 Google</span></div>
    </div>"""


def _multiplayer_panorama() -> str:
    return f"""<div class="game-panorama_panorama__~">
    <div class="game-panorama_panoramaCanvas__~" data-qa="panorama">
    {_street_view()}
    </div>
  </div>"""


def _compass() -> str:
    return """<div class="compass_compass__~" data-qa="compass">
      <div class="compass_compassContainer__~"><div class="compass_needle__~"></div></div></div>"""


def _controls() -> str:
    return """<div class="panorama-controls_root__~">
      <button class="panorama-controls_button__~" data-qa="return-to-start" title="Return to start">⟲</button>
      <button class="panorama-controls_button__~" data-qa="zoom-in" title="Zoom in">+</button>
      <button class="panorama-controls_button__~" data-qa="zoom-out" title="Zoom out">−</button>
    </div>"""


def _round_number(label: str = "Round") -> str:
    # the hook tools read: the round box's second child says "N / 5"
    return f"""<div class="status_section__~" data-qa="round-number"><div class="status_label__~">{label}</div>
      <div class="status_value__~">1 / 5</div></div>"""


def _guess_map(prefix: str) -> str:
    """The guess map: `prefix` is the mode's wrapper module (`game_guessMap__` in singleplayer)."""
    return f"""<div class="{prefix}">
    <div data-qa="guess-map" class="guess-map_guessMap__~">
      <div class="guess-map_canvasContainer__~"><div class="guess-map_canvas__~"><canvas width="320" height="200">
        </canvas></div></div>
      <button data-qa="perform-guess" class="button_button__~ guess-map_guessButton__~" disabled>Guess</button>
    </div>
  </div>"""


def _game_doc(banner: bool, title: str, config: dict, next_data: str, body: str, script: str, query: str) -> str:
    # The page config names the game and its rendering only; the answer lives in __NEXT_DATA__ and /api/game.
    scripts = f"""
{next_data}
<script src="/static/trap.js"></script>
<script>window.__GEOSITE__ = {json.dumps(config)};</script>
<script src="/static/panorama.js{query}"></script>
<script src="/static/guessmap.js{query}"></script>
<script src="/static/{script}{query}"></script>"""
    return _doc(banner, title, body, scripts, in_game=True, query=query)


def game_page(banner: bool, config: dict, next_data: str, query: str = "") -> str:
    """Classic (singleplayer) at /game/<token>: `game_canvas__` wraps the panorama, `game_status__` the counters."""
    body = f"""<div class="in-game_content__~"><div class="game_layout__~">
  <div class="game_canvas__~">
    <div data-qa="panorama" class="game_panorama__~">
    {_street_view()}
    </div>
  </div>
  <div class="game_controls__~">{_compass()}{_controls()}</div>
  <div class="game_status__~" data-qa="game-status">
    <div class="status_section__~"><div class="status_label__~">Map</div>
      <div class="status_value__~">World</div></div>
    {_round_number()}
    <div class="status_section__~" data-qa="score"><div class="status_label__~">Score</div>
      <div class="status_value__~">0</div></div>
  </div>
  {_guess_map("game_guessMap__~")}
</div></div>"""
    return _game_doc(banner, "Game", config, next_data, body, "game.js", query)


def duels_page(banner: bool, config: dict, next_data: str, query: str = "") -> str:
    """Duels at /multiplayer/duels/<id> (and the older /duels/<id>): the duels modules (`game-panorama_`,
    `guess-map_guessMap__`, versioned `hud-2_`, `health-bar-2_`, `round-score-2_`)."""
    body = f"""<div class="in-game_content__~"><div class="game_layout__~ duels_layout__~">
  {_multiplayer_panorama()}
  <div class="hud-2_root__~">
    <div class="health-bar-2_root__~" data-qa="health-bar-you"><div class="health-bar-2_label__~">You</div>
      <div class="health-bar-2_value__~">6000</div></div>
    <div class="round-score-2_root__~">{_round_number()}</div>
    <div class="health-bar-2_root__~" data-qa="health-bar-opponent"><div class="health-bar-2_label__~">Opponent</div>
      <div class="health-bar-2_value__~">6000</div></div>
  </div>
  <div class="game_controls__~">{_compass()}{_controls()}</div>
  {_guess_map("guess-map_root__~")}
</div></div>"""
    return _game_doc(banner, "Duels", config, next_data, body, "game.js", query)


def br_game_page(banner: bool, config: dict, next_data: str, query: str = "") -> str:
    """Battle royale (countries), spectated, at /battle-royale/<id>: the multiplayer panorama modules, a timer,
    no guess map (a spectator has none)."""
    body = f"""<div class="in-game_content__~"><div class="game_layout__~ br_layout__~">
  {_multiplayer_panorama()}
  <div class="hud-2_root__~">
    {_round_number()}
    <div class="status_section__~"><div class="status_label__~">Time</div>
      <div class="status_value__~" data-qa="round-timer">–</div></div>
  </div>
  <div class="game_controls__~">{_compass()}</div>
  <div class="br_spectating__~" data-qa="spectating">Battle Royale Countries · spectating</div>
</div></div>"""
    return _game_doc(banner, "Battle Royale", config, next_data, body, "battle-royale.js", query)
