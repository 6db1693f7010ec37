"""The local GeoGuessr-like site (see server.py), structured like geoguessr.com as maintained tools see it
(../shared/reference/geoguessr-dom.md): a Next.js `#__next` root, CSS-module classes `module_local__XXXXX`
whose 5-character hash is random per class and per server start, `data-qa` hooks, Google's nested
street-view markup around `canvas.widget-scene-canvas` (WebGL, no preserveDrawingBuffer).

Routes (stable: the fair-play defaults recognise the modes by these paths):

| path | what |
|---|---|
| `/signin` | log-in form (every other page redirects here without the `_ncfa` cookie) |
| `/`, `/singleplayer`, `/multiplayer` | menus (visible texts, `data-qa="map-card"` / `"game-mode"`) |
| `/maps/world` → POST `/maps/world/start` | **classic** game at `/game/<id>`: `in-game_root__`, `game_canvas__` > `[data-qa=panorama]`, `game_status__` > `status_section__` (`round-number`, `score`), `game_guessMap__` > `[data-qa=guess-map]`, `perform-guess`; results `result-layout_root__` with `result-view-top`/`-bottom`, `correct-location-marker`, `close-round-result`, last round `play-again-button` |
| `/multiplayer/duels` → POST `/multiplayer/duels/join` | **duels** game at `/multiplayer/duels/<id>` (the older `/duels/<id>` serves the same page): `game-panorama_panorama__` > `game-panorama_panoramaCanvas__[data-qa=panorama]`, `hud-2_`, `health-bar-2_`, `round-score-2_` > `round-number`, `guess-map_guessMap__[data-qa=guess-map]`; round result `result-overlay-2025_root__`, next round by itself |
| `/battle-royale` → POST `/battle-royale/join` | **battle royale** (countries, spectated) at `/battle-royale/<id>`: the multiplayer panorama modules, `round-number`, a timer, no guess map; each round's country in `[data-qa=round-result-country]` |
| `/api/play/<id>`, `/api/br/<id>/round/<n>` | what the game pages' own scripts call (no answer before the guess) |
| `/api/game/<id>`, `__NEXT_DATA__` | the answer, as on the real site: recorded when touched (`GeoSite.answer_touches`) |

Ranked, live-challenge and party variants are not served (the home page links none): the reference gives no hooks or URLs for them.
Query flags on game pages: `?hang=1`, `?black=1` (panorama faults), `?break=<hook>` (rename one hook as a
redesign would: `panorama`, `round-number`, `guess-map`, `compass`; see `server.BREAKS`).
"""

from .server import GAME_ROUTES, GeoSite, Place, load_places

__all__ = ["GAME_ROUTES", "GeoSite", "Place", "load_places"]
