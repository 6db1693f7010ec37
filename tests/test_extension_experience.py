"""The player's experience, in real headless browsers on the local site with a real companion: the options'
token check, how sure the model says it is, waiting and timeout states, the panel kept off the guess map,
the result and summary screens with the round log, fair play per mode, the persistent hide.

The companion serves a test bundle whose answers the test controls: a real ONNX graph whose logits are the
frame's mean colour times fixed weights, so a red street view is "cell 0, sure", a reddish one "cell 0,
likely" and a grey one is close to uniform over the fixture cells ("not sure"). The recording relay in front of it can hold the answers back.

The confidence levels with the round log, and fair play's defaults, run in Chromium and Firefox (tests/browsers.py);
the rest in Chromium: they use Playwright's downloads, new-tab events, mouse drags and service worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from tests.browsers import EXECUTABLES
from tests.extension_fixtures import (
    CHROMIUM,
    EXTENSION,
    ROOT,
    TOKEN,
    Companion,
    Relay,
    each_browser,
    free_port,
    guess_and_next,
    model_bundle,
    open_game,
    overlay_state,
    paired_browser,
    playwright_session,
    set_options,
    wait_for,
    wait_for_overlay,
)
from tests.geosite import GeoSite

pytestmark = [pytest.mark.e2e]

# the committed pictures are refreshed only on purpose; a plain run writes under work/ (ignored by git)
WORK_SHOTS = ROOT / "work" / "screenshots"
SCREENSHOTS = ROOT / "docs" / "img" if os.environ.get("LF_UPDATE_SCREENSHOTS") == "1" else WORK_SHOTS
SURE_WEIGHT = 4.0   # logit of cell 0 per unit of (normalised red − blue): ~12 for a red frame, p(cell 0) > 0.99


def controlled_bundle(out) -> object:
    """A bundle over the fixture cells whose logits are SURE_WEIGHT · (mean red − mean blue) for cell 0 and 0
    for every other cell (pixels → GlobalAveragePool → Gemm)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from runtime.bundle import save_meta
    from tests.companion_devbundle import bundle_meta, cells_geojson

    meta = bundle_meta("test-controlled", "tiny", 64)
    w = np.zeros((3, len(meta.cells)), np.float32)
    w[0, 0], w[2, 0] = SURE_WEIGHT, -SURE_WEIGHT
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["pixels"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
         helper.make_node("Gemm", ["f", "w", "b"], ["logits"])],
        "controlled",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", len(meta.cells)])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(len(meta.cells), np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    (out / "cells.geojson").write_text(json.dumps(cells_geojson(meta)), encoding="utf-8")
    save_meta(out, meta)
    return out


def street_images(folder) -> dict[str, object]:
    """Textured 'street views' (a flat colour would count as an unrendered frame): red, reddish, grey."""
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 60, (480, 480, 1))
    paths = {}
    # logit of cell 0 ≈ SURE_WEIGHT · (r − b) in normalised units: ~12 (p > 0.99), ~3.4 (p ≈ 0.5 of 32 cells), < 0
    for name, base, lat, lng in [("sure", (190, 0, 0), 52.5, -2.0), ("likely", (165, 100, 95), 51.5, -0.1),
                                 ("unsure", (100, 100, 100), -33.9, 151.2)]:
        img = np.clip(np.asarray(base)[None, None, :] + noise, 0, 255).astype(np.uint8)
        path = folder / f"{name}.jpg"
        Image.fromarray(img).save(path, quality=92)
        path.with_suffix(".json").write_text(json.dumps({"id": name, "lat": lat, "lng": lng}), encoding="utf-8")
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return street_images(tmp_path_factory.mktemp("streets"))


@pytest.fixture(scope="module")
def companion(tmp_path_factory):
    c = Companion(controlled_bundle(tmp_path_factory.mktemp("bundle") / "controlled")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def relay(companion):
    r = Relay(companion.ws_url).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def site(images):
    with GeoSite(images=list(images.values()), rounds=len(images), br_round_seconds=2.5, br_result_seconds=0.5) as s:
        yield s


@pytest.fixture(scope="module")
def playwright():   # one per module: a second sync_playwright inside the first refuses to start
    yield from playwright_session()


@pytest.fixture(scope="module")
def chromium(playwright, tmp_path_factory, relay):
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with paired_browser(playwright, tmp_path_factory, relay.ws_url) as (context, worker):
        yield context, worker


@pytest.fixture(scope="module", params=sorted(EXECUTABLES))
def ext_browser(request, playwright, tmp_path_factory, relay):
    yield from each_browser(request, playwright, tmp_path_factory, "chromium", companionUrl=relay.ws_url, token=TOKEN)


def shadow(page, js: str):
    """Evaluate `js` with `s` bound to the overlay's shadow root."""
    return page.evaluate(f"() => {{ const s = document.getElementById('lf-overlay-host').shadowRoot; return ({js}); }}")


def verdict(page) -> dict:
    return shadow(page, """{
      level: s.querySelector('[data-lf="verdict"]').dataset.level,
      text: s.querySelector('[data-lf="verdict"]').hidden ? '' : s.querySelector('[data-lf="verdict"]').textContent,
      firstWeight: (() => { const n = s.querySelector('[data-lf="country"] .name');
                            return n ? Number(getComputedStyle(n).fontWeight) : null; })(),
    }""")


def rect(page, selector: str) -> dict:
    return page.evaluate(f"""() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();
                                    return {{ left: r.left, top: r.top, right: r.right, bottom: r.bottom }}; }}""")


def panel_rect(page) -> dict:
    return shadow(page, "(() => { const r = s.querySelector('[data-lf=\"panel\"]').getBoundingClientRect();"
                        " return { left: r.left, top: r.top, right: r.right, bottom: r.bottom }; })()")


def centre(r: dict) -> tuple[float, float]:
    return (r["left"] + r["right"]) / 2, (r["top"] + r["bottom"]) / 2


def overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def place_of_round(site, page, index: int) -> str:
    """Which street the site shows in round `index` (the test may know; the extension may not)."""
    return site.games[page.url.rsplit("/", 1)[1]].places[index].id


# --- options ------------------------------------------------------------------------------------------

def test_options_test_connection_says_whether_the_url_or_the_token_is_wrong(chromium, companion):
    context, worker = chromium
    ext_id = worker.url.split("/")[2]
    page = context.new_page()
    page.goto(f"chrome-extension://{ext_id}/options/options.html")
    try:
        assert page.get_attribute("#token", "type") == "text"   # the token can be seen, mistakes too
        out = page.locator("#connection")

        def test_with(url, token):
            page.fill("#companionUrl", url)
            page.fill("#token", token)
            page.click("#test")
            wait_for(lambda: out.get_attribute("data-state") in ("ok", "bad"), timeout=10, what="a connection verdict")
            return out.get_attribute("data-state"), out.text_content()

        state, text = test_with(companion.ws_url, TOKEN)
        assert state == "ok" and "token are right" in text
        state, text = test_with(companion.ws_url, "not-the-token")
        assert state == "bad" and "token is wrong" in text and "URL is right" in text
        assert page.get_attribute("#token", "aria-invalid") == "true"
        state, text = test_with(f"ws://127.0.0.1:{free_port()}/ws", TOKEN)
        assert state == "bad" and "URL is wrong" in text and page.get_attribute("#companionUrl", "aria-invalid") == "true"
        state, text = test_with(companion.ws_url, "")
        assert state == "bad" and "token is empty" in text

        # the terminal's line, or the web UI's URL, pasted whole: only the token is kept
        line = f"Lost & Found companion on http://127.0.0.1:{companion.port} (token: {TOKEN}) model test-controlled"
        state, _ = test_with(companion.ws_url, line)
        assert page.input_value("#token") == TOKEN and state == "ok"
        page.fill("#token", f"web UI: http://127.0.0.1:{companion.port}/?token={TOKEN}")
        assert page.input_value("#token") == TOKEN

        # dark, like the overlay
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 28)"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 900, "height": 1100})
        page.screenshot(path=str(SCREENSHOTS / "options.png"))
    finally:
        page.close()


def test_status_texts_have_no_markup_and_errors_open_the_options(chromium, site):
    context, worker = chromium
    texts = worker.evaluate("Object.values(LF.STATUS_TEXT)")
    assert texts and not [t for t in texts if "`" in t]
    set_options(worker, token="not-the-token")
    page = open_game(context, site)
    try:
        wait_for(lambda: (s := overlay_state(page)) and s["light"] == "wrong_token", timeout=10, what="'wrong token'")
        button = page.locator("#lf-overlay-host [data-lf='open-options']")
        assert button.is_visible()
        with context.expect_page() as opened:
            button.click()
        assert opened.value.url.endswith("/options/options.html")
        opened.value.close()
    finally:
        set_options(worker, token=TOKEN)
        page.close()


# --- confidence, screens, round log ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def game(ext_browser, site):
    page = open_game(ext_browser, site)
    page.set_viewport_size({"width": 1280, "height": 720})
    yield page
    page.close()


LEVELS = {"sure": "confident", "likely": "likely", "unsure": "unsure"}   # street → the level it must get
VERDICTS = {"confident": "Confident", "likely": "Likely", "unsure": "Not sure — top guesses"}


def check_round(page, relay, kind: str, browser_name: str) -> dict:
    state = wait_for_overlay(page, timeout=20)
    reply = next(r for r in reversed(relay.replies) if r.get("type") == "prediction" and r["round"] == state["round"])
    top = reply["countries"][0]
    assert reply["confidence"] == LEVELS[kind], (kind, top)
    assert (top["code"] == "GB") == (kind != "unsure") and (top["p"] < 0.35) == (kind == "unsure"), (kind, top)
    v = verdict(page)
    assert v["level"] == LEVELS[kind] and v["text"] == VERDICTS[LEVELS[kind]]
    assert (v["firstWeight"] >= 700) == (kind != "unsure")   # a bold winner only when the model clears the bar
    wait_for(lambda: overlay_state(page)["shadedPixels"] > 50, timeout=20, what="shaded cells")
    # the mini-map frames the list: one sure cell, regionally; a spread answer shows the world, or a world inset
    view = shadow(page, "(({ view, inset }) => ({ view, inset }))(s.querySelector('[data-lf=\"minimap\"]').dataset)")
    if kind == "sure":
        assert view == {"view": "region", "inset": "0"}, view
    elif kind == "unsure":
        assert view["view"] == "world" or view["inset"] == "1", view
    WORK_SHOTS.mkdir(parents=True, exist_ok=True)   # noise streets and placeholder regions: not for the docs
    page.screenshot(path=str(WORK_SHOTS / f"controlled-overlay-{kind}-{browser_name}.png"))
    return state


def guess(page) -> None:
    page.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})
    page.click('[data-qa="perform-guess"]')


def test_confidence_levels_and_the_screens_after(ext_browser, game, relay, site):
    kinds = [place_of_round(site, game, i) for i in range(len(LEVELS))]
    previous = None
    for i, kind in enumerate(kinds):
        state = wait_for_overlay(game, new_round_than=previous, timeout=20)
        check_round(game, relay, kind, ext_browser.name)
        previous = state["round"]
        guess(game)
        if i == len(kinds) - 1:
            break
        # the result screen: no live answer, no mini-map under "Next round"
        game.wait_for_selector('[data-qa="close-round-result"]')
        s = wait_for(lambda: (s := overlay_state(game)) and not s["minimap"] and not s["countries"] and s, timeout=5,
                     what="the panel cleared on the result screen")
        assert f"the model said United Kingdom ({LEVELS[kind]})" in s["foot"] or kind == "unsure"
        game.click('[data-qa="close-round-result"]')

    # the summary: the round log, each round's top countries and confidence, saved as JSON
    game.wait_for_selector('[data-qa="play-again-button"]')
    wait_for(lambda: shadow(game, "s.querySelectorAll('[data-lf=\"log-round\"]').length") == len(kinds), timeout=5,
             what="every round in the log")
    assert not overlay_state(game)["minimap"]
    rows = shadow(game, "[...s.querySelectorAll('[data-lf=\"log-round\"] td:last-child')].map((r) => r.textContent)")
    assert rows == [LEVELS[k] for k in kinds]
    if ext_browser.name == "chromium":
        with game.expect_download() as dl:
            game.locator("#lf-overlay-host [data-lf='export']").click()
        saved = json.loads(open(dl.value.path(), encoding="utf-8").read())
    else:   # WebDriver BiDi has no download events here: the file the link would save, read from its blob
        saved = json.loads(shadow(game, "fetch(s.querySelector('[data-lf=\"export\"]').href).then((r) => r.text())"))
    assert saved["game"] == "/game/" + game.url.rsplit("/", 1)[1] and saved["mode"] == "classic"
    assert [r["confidence"] for r in saved["rounds"]] == [LEVELS[k] for k in kinds]
    assert [r["round"] for r in saved["rounds"]] == [f"{i + 1}/{len(kinds)}" for i in range(len(kinds))]
    assert all(r["countries"] and {"code", "name", "p"} <= set(r["countries"][0]) for r in saved["rounds"])
    game.screenshot(path=str(WORK_SHOTS / f"controlled-summary-{ext_browser.name}.png"))


# --- waiting, timeout, the busy ⟳ ----------------------------------------------------------------------

def test_waiting_timeout_and_busy_capture_with_a_late_companion(chromium, site, relay):
    context, _ = chromium
    relay.delay = 11.0   # beyond the overlay's 8 s wait
    page = open_game(context, site)
    try:
        asking = wait_for(lambda: (s := overlay_state(page)) and s["status"] == "Asking the model…" and s, timeout=15,
                          what="'Asking the model…'")
        assert not asking["countries"]
        late = wait_for(lambda: (s := overlay_state(page)) and s["light"] == "timeout" and s, timeout=12,
                        what="the timeout message")
        assert "No answer from the companion yet" in late["status"] and not late["countries"]
        answered = wait_for_overlay(page, timeout=10)                     # the late answer still shows
        assert answered["status"] == ""

        relay.delay = 2.5
        button = page.locator("#lf-overlay-host [data-lf='capture']")
        button.click()
        wait_for(lambda: button.get_attribute("aria-pressed") == "true", timeout=3, what="⟳ pressed")
        assert overlay_state(page)["status"] == "Asking the model…"
        wait_for(lambda: button.get_attribute("aria-pressed") == "false", timeout=15, what="⟳ released")
        assert overlay_state(page)["status"] == ""
    finally:
        relay.delay = 0.0
        page.close()


# --- placement and size ---------------------------------------------------------------------------------

def test_panel_cannot_be_dragged_over_the_guess_map_and_scales_with_the_viewport(chromium, site):
    context, _ = chromium
    game = open_game(context, site)
    try:
        wait_for_overlay(game, timeout=20)
        for width, height in [(800, 600), (1920, 1080), (1280, 720)]:
            game.set_viewport_size({"width": width, "height": height})
            time.sleep(0.5)
            guess_map = rect(game, '[data-qa="guess-map"]')
            button = rect(game, '[data-qa="perform-guess"]')
            status = rect(game, '[data-qa="game-status"]')   # round and score, top right
            handle = shadow(game, "(() => { const r = s.querySelector('[data-lf=\"handle\"]').getBoundingClientRect();"
                                  " return [r.left + 30, r.top + r.height / 2]; })()")
            game.mouse.move(*handle)
            game.mouse.down()
            # onto the map (at 800×600 above it is the status box), the button, the status box itself
            for target in [centre(guess_map), centre(button), centre(status)]:
                game.mouse.move(*target, steps=8)
                panel = panel_rect(game)
                assert not any(overlap(panel, r) for r in (guess_map, button, status)), (width, panel, guess_map, status)
            game.mouse.up()
            size = shadow(game, "({ font: parseFloat(getComputedStyle(s.querySelector('[data-lf=\"panel\"]')).fontSize),"
                                "   map: s.querySelector('[data-lf=\"minimap\"]').getBoundingClientRect().width })")
            if width == 800:
                assert size["font"] == 12 and size["map"] <= 180, size
            if width == 1920:
                assert size["font"] >= 14 and size["map"] >= 400, size
            minimap = shadow(game, "(() => { const r = s.querySelector('[data-lf=\"minimap\"]').getBoundingClientRect();"
                                   " return { left: r.left, top: r.top, right: r.right, bottom: r.bottom }; })()")
            assert not overlap(minimap, guess_map), (width, minimap, guess_map)
            if width == 800:
                game.screenshot(path=str(WORK_SHOTS / "controlled-800x600.png"))
    finally:
        game.close()


# --- fair play --------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_mode_detection_and_fair_play_defaults():
    """shared/modes.js on the real site's paths (geoguessr-dom.md): competitive modes are off by default."""
    paths = {"/game/abc": "classic", "/challenge/abc": "challenge", "/duels/abc": "duels", "/team-duels/abc": "duels",
             "/multiplayer/duels/abc": "duels", "/battle-royale/abc": "battle-royale", "/competitive/abc": "ranked",
             "/live-challenge/abc": "live-challenge", "/party/abc": "party", "/bullseye/abc": "party", "/maps/x": "other"}
    script = f"""
      const fs = require("fs");
      eval(fs.readFileSync({json.dumps(str(EXTENSION / "shared" / "modes.js"))}, "utf8"));
      const doc = {{ querySelector: () => null }};
      const paths = {json.dumps(list(paths))};
      console.log(JSON.stringify({{
        modes: paths.map((p) => LF.detectMode(p, doc)),
        defaults: Object.fromEntries(LF.MODES.map((m) => [m.key, LF.modeEnabled({{}}, m.key)])),
        chosen: LF.modeEnabled({{ modes: {{ duels: true, classic: false }} }}, "duels")
              && !LF.modeEnabled({{ modes: {{ classic: false }} }}, "classic"),
        hinted: LF.detectMode("/x/y", {{ querySelector: (s) => s.includes("health-bar") ? {{}} : null }}),
      }}));
    """
    res = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True, timeout=30).stdout)
    assert res["modes"] == list(paths.values())
    assert res["defaults"] == {"classic": True, "challenge": True, "duels": False, "battle-royale": False,
                               "ranked": False, "live-challenge": False, "party": False, "other": True}
    assert res["chosen"] and res["hinted"] == "duels"


@pytest.mark.parametrize("mode, lobby, label", [("battle-royale", "/battle-royale", "battle royale"),
                                                 ("duels", "/multiplayer/duels", "duels")])
def test_fair_play_competitive_modes_are_off_by_default_and_nothing_is_sent(ext_browser, site, relay, mode, lobby,
                                                                          label):
    def rounds():   # round ids sent so far (other tabs may still send views of their old rounds)
        return {f.header["round"] for f in relay.frames}

    before = rounds()
    ext_browser.add_cookies([{"name": "_ncfa", "value": site.new_session(), "url": site.url},
                             {"name": "OptanonAlertBoxClosed", "value": "1", "url": site.url}])
    page = ext_browser.new_page()
    page.goto(site.url + lobby)
    page.get_by_text("Join").click()
    page.wait_for_url(re.compile(rf".*{lobby}/[A-Za-z0-9]{{16}}$"))
    try:
        state = wait_for(lambda: (s := overlay_state(page)) and s["light"] == "off" and s, timeout=10, what="'off'")
        assert f"Off in {label}" in state["status"] and "fair play" in state["status"] and not state["countries"]
        assert shadow(page, "s.querySelector('[data-lf=\"open-options\"]').getClientRects().length > 0")
        time.sleep(3)   # the round goes on: still nothing captured or sent
        assert rounds() == before and not overlay_state(page)["countries"]
        ext_browser.set_options(modes={mode: True})   # the player's choice turns it on, without a reload
        state = wait_for_overlay(page, timeout=15)
        assert state["round"] in rounds() - before
    finally:
        ext_browser.set_options(modes={})
        page.close()


def test_reveal_after_i_guess_hides_the_answer_until_the_result(chromium, site, relay):
    context, worker = chromium
    set_options(worker, revealAfterGuess=True)
    page = open_game(context, site)
    try:
        wait_for(lambda: page.evaluate("!!document.getElementById('lf-overlay-host')"), timeout=10, what="the overlay")
        frames = len(relay.frames)
        wait_for(lambda: len(relay.replies) and relay.replies[-1].get("type") == "prediction" and len(relay.frames) >= frames,
                 timeout=15, what="an answer")
        time.sleep(1)
        state = overlay_state(page)
        assert not state["countries"] and not state["minimap"] and "Reveal after I guess" in state["foot"]
        page.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})
        page.click('[data-qa="perform-guess"]')
        shown = wait_for(lambda: (s := overlay_state(page)) and s["countries"] and s, timeout=5, what="the reveal")
        assert shown["countries"][0]["code"] in {"GB", "US"} and "The model said" in verdict(page)["text"]
    finally:
        set_options(worker, revealAfterGuess=False)
        page.close()


def test_hide_hotkey_persists_across_reloads(chromium, site):
    context, worker = chromium
    page = open_game(context, site)
    try:
        wait_for(lambda: (s := overlay_state(page)) and s["visible"], timeout=10, what="overlay shown")
        page.bring_to_front()
        worker.evaluate("lfToggleOverlay()")
        wait_for(lambda: not overlay_state(page)["visible"], timeout=5, what="overlay hidden")
        page.reload()
        page.wait_for_selector('[data-qa="panorama"] canvas')
        time.sleep(2)   # the content script has run: the overlay stays hidden
        assert (s := overlay_state(page)) is None or not s["visible"]
        page.bring_to_front()
        worker.evaluate("lfToggleOverlay()")
        wait_for(lambda: (s := overlay_state(page)) and s["visible"], timeout=5, what="overlay shown again")
    finally:
        set_options(worker, overlay=True)
        page.close()


# --- latency ------------------------------------------------------------------------------------------------

def test_latency_readout_does_not_count_downtime(chromium, site, companion, relay):
    context, worker = chromium
    set_options(worker, companionUrl=companion.ws_url)   # directly: the companion itself goes away
    companion.stop()
    page = open_game(context, site)
    try:
        wait_for(lambda: (s := overlay_state(page)) and s["light"] == "not_running", timeout=15, what="'not running'")
        time.sleep(5)   # the round's frame was captured and waits for the companion
        down_since = time.monotonic()
        companion.start()
        state = wait_for_overlay(page, timeout=30)
        # down for 5 s and more before the restart: before the fix the readout counted all of it
        assert state["captureMs"] < 3000, (state["captureMs"], time.monotonic() - down_since)
    finally:
        if companion.proc is None:
            companion.start()
        set_options(worker, companionUrl=relay.ws_url)
        page.close()


# --- the shipped model, for the pictures in docs/img -----------------------------------------------------

# fixture streets on which the shipped model is sure (Kenya, Indonesia: p 0.96, 0.94 on the files) and unsure
# (Chile, Argentina: top p 0.03, 0.08). The overlay sees the panorama as rendered and captured, not the file, so
# its level can differ (the Kenya street came out "likely"): the test checks it shows what the companion sent.
DOC_STREETS = ["21ed1643d485c3a1", "142a4779c1b65674", "07c3672fed640f63", "10791d3fa386ab36"]


@pytest.mark.skipif(model_bundle() is None, reason="needs a model bundle (companion/models/default)")
def test_shipped_model_levels_as_shown(playwright, tmp_path_factory, fixture_images):
    """With the real model the overlay shows the level the companion sent (bold winner only when not unsure);
    the pictures of docs/img come from here."""
    real = Companion(model_bundle()).start()
    relay = Relay(real.ws_url).start()
    try:
        with GeoSite(images=[fixture_images / f"{s}.jpg" for s in DOC_STREETS], rounds=len(DOC_STREETS)) as site, \
                paired_browser(playwright, tmp_path_factory, relay.ws_url) as (context, _):
            page = open_game(context, site)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            previous = None
            for i in range(len(DOC_STREETS)):
                state = wait_for_overlay(page, timeout=30, new_round_than=previous)
                reply = next(r for r in reversed(relay.replies) if r.get("type") == "prediction" and r["round"] == state["round"])
                v = verdict(page)
                assert v["level"] == reply["confidence"] and (v["firstWeight"] >= 700) == (reply["confidence"] != "unsure")
                wait_for(lambda: overlay_state(page)["shadedPixels"] > 50, timeout=30, what="shaded cells")
                page.screenshot(path=str(SCREENSHOTS / f"overlay-{reply['confidence']}.png"))
                page.locator("#lf-overlay-host [data-lf='minimap']").screenshot(
                    path=str(SCREENSHOTS / f"minimap-{reply['confidence']}.png"))
                previous = state["round"]
                print(f"\nround {i + 1}: {reply['confidence']} {reply['countries'][0]['code']} {reply['countries'][0]['p']:.2f}")
                if i < len(DOC_STREETS) - 1:
                    guess_and_next(page)
    finally:
        relay.stop()
        real.stop()
