"""HTML of the GeoSite pages. Class names carry the per-server hash suffix, like the real site's CSS modules."""

from __future__ import annotations

import json
from html import escape


def _doc(h: str, banner: bool, title: str, body: str, scripts: str = "") -> str:
    cookie_banner = """
<div id="onetrust-banner-sdk" class="otFlat" role="dialog" aria-label="Cookie banner">
  <p>We use cookies to improve your experience. Read our cookie policy.</p>
  <button id="onetrust-pc-btn-handler">Cookie settings</button>
  <button id="onetrust-accept-btn-handler">Accept All Cookies</button>
</div>""" if banner else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - GeoSite</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css"></head>
<body><div id="__next"><div class="layout_root__{h}">
<header class="header_header__{h}"><a class="header_logo__{h}" href="/">GeoSite</a></header>
<main class="layout_main__{h}">{body}</main></div></div>{cookie_banner}
<script src="/static/common.js"></script>{scripts}
</body></html>"""


def signin_page(h: str, banner: bool, error: str | None = None) -> str:
    err = f'<p class="auth_error__{h}" data-qa="signin-error">{escape(error)}</p>' if error else ""
    body = f"""<section class="auth_card__{h}"><h1>Log in</h1>{err}
<form method="post" action="/signin" class="auth_form__{h}">
  <label>Email <input name="email" type="email" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit" data-qa="login-cta" class="button_button__{h}">Log in</button>
</form></section>"""
    return _doc(h, banner, "Log in", body)


def home_page(h: str, banner: bool) -> str:
    body = f"""<nav class="home_modes__{h}">
  <a class="home_mode__{h}" href="/singleplayer">Singleplayer</a>
  <a class="home_mode__{h}" href="/multiplayer">Multiplayer</a>
  <a class="home_mode__{h}" href="/party">Party</a>
</nav>"""
    return _doc(h, banner, "Home", body)


def simple_list_page(h: str, banner: bool, title: str, links: list[tuple[str, str]], qa: str) -> str:
    items = "".join(f'<a class="{qa.replace("-", "_")}_card__{h}" data-qa="{qa}" href="{href}">{escape(text)}</a>'
                    for text, href in links)
    return _doc(h, banner, title, f"<h1>{escape(title)}</h1><div class=\"list_grid__{h}\">{items}</div>")


def map_page(h: str, banner: bool, title: str, start_action: str, first_button: str, second_button: str | None) -> str:
    """A map's page: the first button starts directly (battle royale) or opens the settings step (singleplayer)."""
    if second_button is None:
        form = f"""<form method="post" action="{start_action}">
  <button type="submit" class="button_button__{h}" data-qa="join-game">{escape(first_button)}</button></form>"""
    else:
        form = f"""<button type="button" class="button_button__{h}" data-qa="play-map"
  onclick="this.hidden=true;document.getElementById('game-settings').hidden=false">{escape(first_button)}</button>
<form id="game-settings" hidden method="post" action="{start_action}" class="settings_step__{h}">
  <p class="settings_label__{h}">Default settings: moving allowed, no time limit.</p>
  <button type="submit" class="button_button__{h}" data-qa="start-game-button">{escape(second_button)}</button>
</form>"""
    return _doc(h, banner, title, f"<h1>{escape(title)}</h1>{form}")


def message_page(h: str, banner: bool, title: str, text: str) -> str:
    return _doc(h, banner, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def next_data_script(data: dict) -> str:
    # "</" cannot end the script early once escaped
    return ('<script id="__NEXT_DATA__" type="application/json">'
            + json.dumps(data).replace("</", "<\\/") + "</script>")


def _panorama(h: str) -> str:
    return f"""<div data-qa="panorama" class="game_panorama__{h}">
    <canvas class="game_canvas__{h}" tabindex="0" aria-label="Street view"></canvas>
    <div class="panorama-compass_compassContainer__{h}" data-qa="compass">
      <div class="panorama-compass_needle__{h}"></div></div>
    <div class="game_controls__{h}">
      <button class="game_control__{h}" data-qa="return-to-start" title="Return to start">⟲</button>
      <button class="game_control__{h}" data-qa="zoom-in" title="Zoom in">+</button>
      <button class="game_control__{h}" data-qa="zoom-out" title="Zoom out">−</button>
    </div>
  </div>"""


def _status(h: str, extra: str = "") -> str:
    return f"""<div class="game_status__{h}">
    <div class="status_section__{h}"><div class="status_label__{h}">Map</div>
      <div class="status_value__{h}">World</div></div>
    <div class="status_section__{h}" data-qa="round-number"><div class="status_label__{h}">Round</div>
      <div class="status_value__{h}">1 / 5</div></div>{extra}
  </div>"""


def _game_doc(h: str, banner: bool, title: str, config: dict, next_data: str, body: str, script: str) -> str:
    # The page config names the game and its rendering only; the answer lives in __NEXT_DATA__ and /api/game.
    scripts = f"""
{next_data}
<script src="/static/trap.js"></script>
<script>window.__GEOSITE__ = {json.dumps(config)};</script>
<script src="/static/panorama.js"></script>
<script src="/static/guessmap.js"></script>
<script src="/static/{script}"></script>"""
    return _doc(h, banner, title, body, scripts)


def game_page(h: str, banner: bool, config: dict, next_data: str) -> str:
    score = f"""
    <div class="status_section__{h}" data-qa="score"><div class="status_label__{h}">Score</div>
      <div class="status_value__{h}">0</div></div>"""
    body = f"""<div class="game_layout__{h}">
  {_panorama(h)}
  {_status(h, score)}
  <div class="game_guessMap__{h}">
    <div data-qa="guess-map" class="guess-map_canvas__{h}"><canvas width="320" height="200"></canvas></div>
    <button data-qa="perform-guess" class="button_button__{h} guess-map_guessButton__{h}" disabled>Guess</button>
  </div>
</div>"""
    return _game_doc(h, banner, "Game", config, next_data, body, "game.js")


def br_game_page(h: str, banner: bool, config: dict, next_data: str) -> str:
    timer = f"""
    <div class="status_section__{h}"><div class="status_label__{h}">Time</div>
      <div class="status_value__{h}" data-qa="round-timer">–</div></div>"""
    body = f"""<div class="game_layout__{h} br_layout__{h}">
  {_panorama(h)}
  {_status(h, timer)}
  <div class="br_spectating__{h}" data-qa="spectating">Battle Royale Countries · spectating</div>
</div>"""
    return _game_doc(h, banner, "Battle Royale", config, next_data, body, "battle-royale.js")
