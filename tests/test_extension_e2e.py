"""The extension in real headless browsers, Chromium and Firefox, on the local GeoGuessr-like site, talking to a
real companion.

Each test runs in both browsers (tests/browsers.py: Playwright for Chromium, WebDriver BiDi for Firefox).
One companion and one site for the module, one browser and one recording relay per browser (starting them
is most of the cost); the tests run in file order per browser and each leaves the options as it found them.
The relay sits between the extension and the companion where a test needs to see exactly what left the
browser.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

from tests.browsers import EXECUTABLES, launch
from tests.extension_fixtures import (
    ROOT,
    TOKEN,
    Companion,
    Relay,
    extension_for_tests,
    extension_with_screenshots,
    guess_and_next,
    model_bundle,
    open_game,
    overlay_state,
    playwright_session,
    sign_in_and_start,
    wait_for,
    wait_for_overlay,
)
from tests.geosite import GeoSite

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(model_bundle() is None, reason="needs a model bundle (companion/models/default)"),
]

HEADER_KEYS = {"v", "round", "frame", "heading", "top_k"}
# the committed picture is refreshed only on purpose; a plain run writes under work/ (ignored by git)
SCREENSHOTS = ROOT / ("docs/img" if os.environ.get("LF_UPDATE_SCREENSHOTS") == "1" else "work/screenshots")


@pytest.fixture(scope="module")
def companion():
    c = Companion(model_bundle()).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def relay(companion, browser_name):
    """One per browser: it records what left that browser only."""
    r = Relay(companion.ws_url).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def site():
    with GeoSite(br_round_seconds=2.5, br_result_seconds=0.5) as s:
        yield s


@pytest.fixture(scope="module")
def playwright():
    yield from playwright_session()


@pytest.fixture(scope="module", params=sorted(EXECUTABLES))
def browser_name(request):
    if not EXECUTABLES[request.param].exists():
        pytest.skip(f"needs {request.param} at {EXECUTABLES[request.param]}")
    return request.param


@pytest.fixture(scope="module")
def ext_browser(browser_name, playwright, tmp_path_factory, relay):
    extension = extension_for_tests(tmp_path_factory.mktemp("extension"))
    with launch(browser_name, tmp_path_factory.mktemp(f"{browser_name}-profile"), extension, playwright) as b:
        b.set_options(companionUrl=relay.ws_url, token=TOKEN)
        yield b


@pytest.fixture(scope="module")
def game(ext_browser, site):
    page = ext_browser.new_page()
    sign_in_and_start(page, site)
    yield page
    page.close()


def screenshot(page, browser_name: str, name: str) -> None:
    """Chromium's picture keeps its name (the README shows it); Firefox's goes beside it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / (f"{name}.png" if browser_name == "chromium" else f"{name}-{browser_name}.png")))


def drawn_panorama(image, size) -> Image.Image:
    """`image` as tests/geosite/static/panorama.js draws it on a canvas of `size`: scaled to cover the canvas,
    the overflowing side cropped evenly, bilinear."""
    img = Image.open(image).convert("RGB")
    (w, h), (cw, ch) = img.size, size
    if cw / ch > w / h:
        band = w * ch / cw
        box = (0, (h - band) / 2, w, (h + band) / 2)
    else:
        band = h * cw / ch
        box = ((w - band) / 2, 0, (w + band) / 2, h)
    return img.resize(size, Image.BILINEAR, box=box)


def frames_of(relay, round_id):
    return [f for f in relay.frames if f.header["round"] == round_id]


def test_overlay_shows_the_companions_answer_for_the_captured_frame(game, relay, companion, site, tmp_path,
                                                                    browser_name):
    state = wait_for_overlay(game, timeout=20)
    assert len(state["countries"]) == 5 and state["light"] == "connected" and state["status"] == ""
    for c in state["countries"]:   # flag emoji = the two regional indicators of the ISO code
        assert c["flag"] == "".join(chr(0x1F1E6 + ord(ch) - 65) for ch in c["code"])
    assert state["regions"] and state["minimap"] and state["captureMs"] > 0
    # the mini-map shades the top cells (their outlines come from GET /v1/model, possibly just after the answer)
    wait_for(lambda: overlay_state(game)["shadedPixels"] > 100, timeout=30, what="shaded cells on the mini-map")

    # what the companion received for this round: one frame of image bytes, the size of the panorama
    sent = frames_of(relay, state["round"])
    assert len(sent) == 1 and sent[0].header["top_k"] == 5
    frame = Image.open(io.BytesIO(sent[0].image))
    canvas_size = game.evaluate("""() => { const c = document.querySelector('[data-qa="panorama"] canvas');
                                          return [c.width, c.height]; }""")
    assert frame.format == "JPEG" and frame.size == tuple(canvas_size)
    assert np.asarray(frame.convert("L")).std() > 20   # a real picture, not a blank buffer

    # the overlay's first country is `companion predict` on the same bytes
    path = tmp_path / "captured.jpg"
    path.write_bytes(sent[0].image)
    drawn = drawn_panorama(site.games[game.url.rsplit("/", 1)[1]].places[0].path, frame.size)
    drawn.save(tmp_path / "drawn.jpg", quality=92)
    captured, redrawn = companion.predict([path, tmp_path / "drawn.jpg"])
    assert state["countries"][0]["code"] == captured["countries"][0]["code"]
    assert [c["code"] for c in state["countries"]] == [c["code"] for c in captured["countries"][:5]]
    # and those bytes are the round's image as the site draws it. The canvas never shows the fixture 1:1 (a
    # square image covering a 16:9 canvas: a centred band, magnified about 4x), and the model's answer for the
    # raw file often differs from that for the band, even beyond its top 3; so the reference is the drawing
    # redone here. WebGL's and PIL's sampling and the JPEG re-encoding differ a little and may swap near-ties:
    # hence the overlay's first country within the redrawn image's top 3, not necessarily its first.
    diff = np.abs(np.asarray(frame.convert("RGB"), np.float32) - np.asarray(drawn, np.float32)).mean()
    assert diff < 3, diff   # measured: under 1
    assert state["countries"][0]["code"] in [c["code"] for c in redrawn["countries"][:3]]
    print(f"\noverlay top-1 {state['countries'][0]['code']}; predict on the redrawn fixture "
          f"{[c['code'] for c in redrawn['countries'][:3]]}; mean pixel difference {diff:.1f}")

    # it only shows: no marker placed, the guess button untouched
    assert game.locator('[data-qa="guess-marker"]').is_hidden()
    assert game.locator('[data-qa="perform-guess"]').is_disabled()

    screenshot(game, browser_name, "overlay")


def test_new_round_gives_a_new_prediction_and_a_pan_adds_a_view(game, relay):
    first = wait_for_overlay(game)
    guess_and_next(game)
    second = wait_for_overlay(game, new_round_than=first["round"])
    assert second["round"] != first["round"]
    new_frames = frames_of(relay, second["round"])
    assert new_frames and new_frames[0].image != frames_of(relay, first["round"])[0].image

    # the player pans and pauses: the new view goes out under the same round id, and the answer pools both
    for _ in range(6):
        game.keyboard.press("ArrowRight")
        time.sleep(0.03)
    pooled = wait_for_overlay(game, min_frames=2, timeout=10)
    assert pooled["round"] == second["round"]
    views = frames_of(relay, second["round"])
    assert len(views) >= 2 and views[0].image != views[1].image
    assert views[0].header["heading"] != views[1].header["heading"]    # from the compass, as drawn


def test_a_resize_is_not_a_pan(game, relay):
    """Resizing the window reframes the same view (the canvas changes size): no new view goes out; a pan
    after it still does."""
    state = wait_for_overlay(game)
    time.sleep(1.5)   # any view of the last pan has gone out
    before = len(frames_of(relay, state["round"]))
    for width, height in [(1000, 640), (1280, 720)]:
        game.set_viewport_size({"width": width, "height": height})
        wait_for(lambda w=width: game.evaluate("document.querySelector('[data-qa=\"panorama\"] canvas').width") == w,
                 timeout=5, what="the canvas resized")
        time.sleep(2)   # well past the pause after which a pan is sent
    assert len(frames_of(relay, state["round"])) == before
    for _ in range(6):
        game.keyboard.press("ArrowRight")
        time.sleep(0.03)
    wait_for(lambda: len(frames_of(relay, state["round"])) > before, timeout=10, what="the pan's view")


def test_pixels_only(game, relay, site):
    """Only image bytes, round/frame ids and heading leave the browser; the answer's hiding places are untouched."""
    assert relay.frames
    game_id = game.url.rsplit("/", 1)[1]
    for f in relay.frames:
        assert set(f.header) <= HEADER_KEYS and {"v", "round", "frame"} <= set(f.header)
        assert re.fullmatch(r"[0-9a-f]{18}", f.header["round"]) and game_id not in f.raw_header.decode()
        Image.open(io.BytesIO(f.image)).verify()
    assert all(re.fullmatch(r'\{"type":\s*"ping"\}', c) for c in relay.controls)
    assert relay.queries and all(q == f"token={TOKEN}" for q in relay.queries)
    assert site.answer_touches() == []


def test_companion_stop_shows_not_running_and_restart_recovers(game, ext_browser, companion):
    ext_browser.set_options(companionUrl=companion.ws_url)       # directly, without the relay
    before = wait_for(lambda: (s := overlay_state(game)) and s["light"] == "connected" and s, what="connected")
    companion.stop()
    down = wait_for(lambda: (s := overlay_state(game)) and s["light"] == "not_running" and s, timeout=10,
                    what="'not running'")
    assert "Companion not running" in down["status"]
    companion.start()
    wait_for(lambda: overlay_state(game)["light"] == "connected", timeout=20, what="reconnection")
    guess_and_next(game)                                      # no reload: the next round is answered
    after = wait_for_overlay(game, new_round_than=before["round"], timeout=20)
    assert len(after["countries"]) == 5 and game.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_wrong_token_says_so(game, ext_browser, relay):
    ext_browser.set_options(token="not-the-token")
    state = wait_for(lambda: (s := overlay_state(game)) and s["light"] == "wrong_token" and s, timeout=10,
                     what="'wrong token'")
    assert "Wrong token" in state["status"] and "options" in state["status"]
    ext_browser.set_options(token=TOKEN, companionUrl=relay.ws_url)
    wait_for(lambda: overlay_state(game)["light"] == "connected", timeout=15, what="reconnection")


def test_options_page_saves_the_token_and_checks_the_companion(game, ext_browser, relay, browser_name):
    """The player's way to pair: the options page (reached at the extension's own URL, as its toolbar icon
    opens it) shows the saved settings and whether the companion answers; a saved wrong token reaches the
    game tab as 'wrong token', the right one reconnects it."""
    options = ext_browser.open_options()
    try:
        options.wait_for_selector('#connection[data-state]:not([data-state="busy"])')
        assert options.evaluate("document.getElementById('companionUrl').value") == relay.ws_url
        assert options.evaluate("document.getElementById('token').value") == TOKEN
        assert "token are right" in options.evaluate("document.getElementById('connection').textContent")
        assert options.evaluate("document.getElementById('hotkey').textContent") in ("Alt+Shift+L", "⌥⇧L")

        def save(token: str) -> None:
            options.fill("#token", token)
            options.click("#save")
            options.wait_for_selector("#saved:not(:empty)")

        save("not-the-token")
        wait_for(lambda: overlay_state(game)["light"] == "wrong_token", timeout=10, what="'wrong token' in the game tab")
        assert ext_browser.in_extension("async () => (await LF.loadSettings()).token") == "not-the-token"
        save(TOKEN)
        wait_for(lambda: overlay_state(game)["light"] == "connected", timeout=20, what="reconnection")
        options.evaluate("scrollTo(0, 0)")
        screenshot(options, browser_name, "options")
        # a URL that is not a websocket is refused in the page itself
        options.fill("#companionUrl", "http://127.0.0.1:1/ws")
        options.click("#save")
        options.wait_for_selector('#connection[data-state="bad"]')
        assert "ws://" in options.evaluate("document.getElementById('connection').textContent")
    finally:
        options.close()
        ext_browser.set_options(companionUrl=relay.ws_url, token=TOKEN)
        game.bring_to_front()
    wait_for(lambda: overlay_state(game)["light"] == "connected", timeout=20, what="reconnection")


def test_hotkey_command_toggles_the_overlay(game, ext_browser):
    toggle = next(c for c in ext_browser.commands() if c["name"] == "toggle-overlay")
    assert toggle["shortcut"] in ("Alt+Shift+L", "⌥⇧L")
    game.bring_to_front()
    ext_browser.toggle_overlay()
    wait_for(lambda: not overlay_state(game)["visible"], timeout=5, what="overlay hidden")
    ext_browser.toggle_overlay()
    wait_for(lambda: overlay_state(game)["visible"], timeout=5, what="overlay shown")


def test_screenshot_fallback_hides_the_ui_and_crops_to_the_panorama(browser_name, playwright, tmp_path, site, relay):
    extension = extension_with_screenshots(tmp_path / "extension")
    with launch(browser_name, tmp_path / "profile", extension, playwright) as b:
        b.set_options(companionUrl=relay.ws_url, token=TOKEN, captureMode="tab")
        page = open_game(b, site)
        state = wait_for_overlay(page, timeout=30)
        shot = Image.open(io.BytesIO(frames_of(relay, state["round"])[0].image)).convert("RGB")
        assert shot.size == (1280, 720)
        # where the guess map and the overlay panel are on screen, the screenshot shows the street view,
        # as the canvas's own pixels do
        data = page.evaluate("document.querySelector('[data-qa=\"panorama\"] canvas').toDataURL('image/png')")
        canvas = Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB")
        for box in [(940, 450, 1260, 700), (10, 10, 280, 260)]:
            a = np.asarray(shot.crop(box), np.float32)
            b = np.asarray(canvas.crop(box), np.float32)
            assert np.abs(a - b).mean() < 12, box


def test_battle_royale_rounds_are_followed_with_more_countries(ext_browser, site):
    # more than the companion's default of 5: the frame header asks for them (battle royale is competitive:
    # the player turns the assistant on for it)
    ext_browser.set_options(topK=8, modes={"battle-royale": True})
    page = open_game(ext_browser, site, "battle-royale")
    try:
        first = wait_for_overlay(page, timeout=15)
        second = wait_for_overlay(page, new_round_than=first["round"], timeout=15)
        assert len(second["countries"]) == 8
    finally:
        ext_browser.set_options(topK=5, modes={})
        page.close()


def test_panorama_not_found_is_reported(ext_browser, site):
    ext_browser.set_options(selectors={"panorama": ['[data-qa="street-view-that-moved"]']})
    page = open_game(ext_browser, site)
    try:
        state = wait_for(lambda: (s := overlay_state(page)) and s["light"] == "no_panorama" and s, timeout=10,
                         what="'panorama not found'")
        assert "Panorama not found" in state["status"] and not state["countries"]
    finally:
        ext_browser.set_options(selectors={})
        page.close()
