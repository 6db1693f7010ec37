"""The extension's hooks against the rebuilt GeoSite (the real page's structure, random class hashes): its
default selectors find every hook of ../shared/reference/geoguessr-dom.md it uses, in each mode, the
class-prefix fallbacks alone find the same elements, and nothing is reported missing (in Chromium and Firefox,
through tests/browsers.py); the self-check names a hook that a redesign broke, until the player overrides its
selector in the options (Chromium: those tests drive the options page with Playwright's form API).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from tests.browsers import EXECUTABLES
from tests.extension_fixtures import (
    CHROMIUM,
    EXTENSION,
    TOKEN,
    Companion,
    Relay,
    each_browser,
    model_bundle,
    overlay_state,
    paired_browser,
    playwright_session,
    set_options,
    wait_for,
    wait_for_overlay,
)
from tests.geosite import GeoSite

pytestmark = [pytest.mark.e2e]

MODES = {  # the page where a game starts, its button, the game URL
    "classic": ("/maps/world", "Start game", r"/game/[A-Za-z0-9]{16}$"),
    "duels": ("/multiplayer/duels", "Join", r"/multiplayer/duels/[A-Za-z0-9]{16}$"),
    "battle-royale": ("/battle-royale", "Join", r"/battle-royale/[A-Za-z0-9]{16}$"),
}

# What the extension's own code (settings.js + dom.js, loaded into the page) finds with its defaults, or with
# the class-prefix/Google-class fallbacks alone (every data-qa entry left out).
FIND = """(fallbacksOnly) => {
  const sel = {};
  for (const [k, list] of Object.entries(LF.DEFAULT_SELECTORS)) {
    sel[k] = fallbacksOnly ? list.filter((s) => !s.includes("data-qa")) : list;
  }
  const describe = (el) => el && {
    tag: el.tagName.toLowerCase(), qa: el.closest("[data-qa]")?.dataset.qa ?? null, cls: el.className };
  const canvas = LF.findPanoramaCanvas(sel.panorama);
  return {
    selectors: sel,
    panorama: describe(canvas),
    panoramaIsTheSceneCanvas: !!canvas && canvas === document.querySelector('[data-qa="panorama"] canvas.widget-scene-canvas'),
    round: LF.readRound(sel.roundNumber),
    guessMap: describe(LF.findFirst(sel.guessMap)),
    guessMapHoldsTheMap: !!LF.findFirst(sel.guessMap)?.contains(document.querySelector('[data-qa="guess-map"]')),
    compass: describe(LF.findFirst(sel.compass)),
    heading: LF.readHeading(sel.compass),
    results: describe(LF.findFirst(sel.results)),
    missing: new LF.HookCheck(0).update(sel),
  };
}"""


@pytest.fixture(scope="module")
def site():
    with GeoSite() as s:   # class hashes: a random one per class, as on the real site
        assert s.hash is None
        yield s


@pytest.fixture(scope="module")
def playwright():
    yield from playwright_session()


def start(b, page, site, mode: str, query: str = "") -> None:
    """`page` of the browser `b` (a Playwright context or an ExtensionBrowser: both add cookies) into a game."""
    path, button, url = MODES[mode]
    b.add_cookies([{"name": "_ncfa", "value": site.new_session(), "url": site.url},
                   {"name": "OptanonAlertBoxClosed", "value": "1", "url": site.url}])
    page.goto(site.url + path)
    if mode == "classic":
        page.get_by_text("Play", exact=True).click()
    page.get_by_text(button, exact=True).click()
    page.wait_for_url(re.compile(".*" + url))
    if query:
        page.goto(page.url + query)
    page.wait_for_selector('[data-loaded="true"]')


def load_extension_code(page) -> None:
    """The extension's hook code into the page's own world (where FIND runs), as script tags."""
    for f in ("shared/constants.js", "shared/settings.js", "content/dom.js"):
        page.evaluate("(src) => { const s = document.createElement('script'); s.textContent = src;"
                      " document.head.appendChild(s); }", (EXTENSION / f).read_text(encoding="utf-8"))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to read settings.js")
def test_defaults_are_the_reference_hooks_data_qa_first_and_never_a_hash():
    script = "".join((EXTENSION / "shared" / f).read_text(encoding="utf-8") for f in ("constants.js", "settings.js"))
    out = subprocess.run(["node", "-e", script + "\nprocess.stdout.write(JSON.stringify(LF.DEFAULT_SELECTORS))"],
                         capture_output=True, text=True, timeout=30, check=True)
    defaults = json.loads(out.stdout)
    assert set(defaults) == {"panorama", "roundNumber", "guessMap", "compass", "results"}
    for key, entries in defaults.items():
        assert entries and entries[0].startswith("[data-qa="), (key, entries)
        for s in entries:
            assert not re.search(r"__[A-Za-z0-9]{5}\b", s), f"{key}: {s} names a hash"
            assert s.startswith("[data-qa=") or s == "canvas.widget-scene-canvas" or re.fullmatch(r"\.[\w-]+__\*", s), s


@pytest.fixture(scope="module")
def companion_relay():
    if model_bundle() is None:
        pytest.skip("needs a model bundle (companion/models/default)")
    companion = Companion(model_bundle()).start()
    relay = Relay(companion.ws_url).start()
    try:
        yield relay
    finally:
        relay.stop()
        companion.stop()


# duels and battle royale are off by default (fair play): these tests are about hooks, not that rule
HOOK_TEST_OPTIONS = {"token": TOKEN, "modes": {"duels": True, "battle-royale": True}}


@pytest.fixture(scope="module")
def chromium(playwright, tmp_path_factory, companion_relay):
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with paired_browser(playwright, tmp_path_factory, companion_relay.ws_url, **HOOK_TEST_OPTIONS) as (context, worker):
        yield context, worker, companion_relay


@pytest.fixture(scope="module", params=sorted(EXECUTABLES))
def ext_browser(request, playwright, tmp_path_factory, companion_relay):
    yield from each_browser(request, playwright, tmp_path_factory, "chromium", companionUrl=companion_relay.ws_url,
                            **HOOK_TEST_OPTIONS)


@pytest.mark.parametrize("mode", list(MODES))
def test_the_defaults_and_their_fallbacks_find_every_hook_in_each_mode(ext_browser, site, mode):
    """FIND runs in the page's own world with the extension's code loaded there (the extension's content
    scripts also run on the page, in theirs: they don't change what is found)."""
    page = ext_browser.new_page()
    try:
        start(ext_browser, page, site, mode)
        # the classes carry this server's random hashes: the selectors can only have matched by prefix
        served = page.evaluate("document.querySelector('[data-qa=\"panorama\"]').className")
        assert re.fullmatch(r"(game_panorama|game-panorama_panoramaCanvas)__[A-Za-z0-9]{5}", served), served
        load_extension_code(page)
        found = page.evaluate(FIND, False)
        assert found["panoramaIsTheSceneCanvas"] and found["panorama"]["qa"] == "panorama"
        assert found["round"] == "1/5"
        assert found["compass"]["qa"] == "compass" and isinstance(found["heading"], (int, float))
        assert found["results"] is None and found["missing"] == []
        if mode == "battle-royale":   # a spectator has no guess map
            assert found["guessMap"] is None
        else:
            assert found["guessMap"]["qa"] == "guess-map"

        fallback = page.evaluate(FIND, True)
        assert all(fallback["selectors"][k] for k in ("panorama", "guessMap", "results")), fallback["selectors"]
        assert fallback["panoramaIsTheSceneCanvas"]
        if mode != "battle-royale":
            assert fallback["guessMapHoldsTheMap"]

        if mode == "classic":   # the results screen, its buttons, and the counter of the next round
            for n in range(1, 6):
                page.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})
                page.click('[data-qa="perform-guess"]')
                page.wait_for_selector('[data-qa="result-view-top"]')
                for fallbacks_only in (False, True):
                    shown = page.evaluate(FIND, fallbacks_only)
                    assert shown["results"] and shown["missing"] == [], shown
                assert page.locator('[class^="result-layout_root__"] [data-qa="correct-location-marker"]').count()
                if n < 5:
                    page.click('[data-qa="close-round-result"]')
                    wait_for(lambda n=n: page.evaluate(f"LF.readRound(LF.DEFAULT_SELECTORS.roundNumber) === '{n + 1}/5'"),
                             timeout=10, what=f"round {n + 1}")
            assert not page.locator('[data-qa="play-again-button"]').is_hidden()
    finally:
        page.close()
    assert site.answer_touches() == []


def hook_notice(page) -> str:
    return page.evaluate("""() => { const n = document.getElementById('lf-overlay-host')
        ?.shadowRoot.querySelector('[data-lf="hooks"]'); return n && !n.hidden ? n.textContent : ''; }""")


@pytest.mark.parametrize("mode", list(MODES))
def test_no_hook_is_reported_missing_in_any_mode(ext_browser, site, mode):
    page = ext_browser.new_page()
    try:
        start(ext_browser, page, site, mode)
        wait_for_overlay(page, timeout=30)
        time.sleep(3.5)   # past the self-check's grace period
        assert hook_notice(page) == ""
    finally:
        page.close()


def test_a_broken_hook_is_named_and_an_override_in_the_options_recovers(chromium, site):
    context, worker, relay = chromium
    extension_id = worker.url.split("/")[2]
    page = context.new_page()
    try:
        start(context, page, site, "classic", "?break=panorama")
        notice = wait_for(lambda: hook_notice(page), timeout=10, what="the missing-hook notice")
        assert notice.startswith("Not found on this page: Panorama (tried [data-qa=\"panorama\"], "
                                 "canvas.widget-scene-canvas")
        assert "Round counter" not in notice and "options" in notice
        assert overlay_state(page)["light"] == "no_panorama" and not overlay_state(page)["countries"]
        frames_before = len(relay.frames)

        options = context.new_page()
        options.goto(f"chrome-extension://{extension_id}/options/options.html")
        box = options.locator("#sel-panorama")
        assert box.input_value().splitlines()[0] == '[data-qa="panorama"]'
        box.fill('[data-qa=="panorama"]\ncanvas.widget-scene-canvas')   # a typo first: refused, said where
        options.click("#save")
        assert "not a CSS selector" in options.inner_text("#sel-panorama-error")
        assert "Not saved" in options.inner_text("#saved")
        assert json.dumps(worker.evaluate("LF.loadSettings()")["selectors"]["panorama"]) == json.dumps(
            worker.evaluate("LF.DEFAULT_SELECTORS.panorama"))
        box.fill('[data-qa="panorama-renamed"]\ncanvas.widget-scene-canvas')
        options.click("#save")
        wait_for(lambda: options.inner_text("#saved") == "Saved.", timeout=5, what="saved")
        assert options.inner_text("#sel-panorama-error") == ""
        stored = worker.evaluate("LF.api.storage.local.get('settings')")["settings"]["selectors"]
        assert stored == {"panorama": ['[data-qa="panorama-renamed"]', "canvas.widget-scene-canvas"]}

        state = wait_for_overlay(page, timeout=20)
        assert hook_notice(page) == "" and state["light"] == "connected"
        assert len(relay.frames) > frames_before

        options.click("#resetSelectors")
        options.click("#save")
        wait_for(lambda: not worker.evaluate("LF.api.storage.local.get('settings')")["settings"]["selectors"],
                 timeout=5, what="the override removed")
        assert "Panorama" in wait_for(lambda: hook_notice(page), timeout=10, what="the notice again")
        options.close()
    finally:
        set_options(worker, selectors={})
        page.close()


@pytest.mark.parametrize(("mode", "hook", "label"), [
    ("duels", "panorama", "Panorama"), ("duels", "round-number", "Round counter"),
    ("battle-royale", "compass", "Compass")])
def test_a_broken_hook_is_named_in_each_mode(chromium, site, mode, hook, label):
    context, _, _ = chromium
    page = context.new_page()
    try:
        start(context, page, site, mode, f"?break={hook}")
        if hook != "panorama":
            wait_for_overlay(page, timeout=20)   # the panorama is found: capture goes on
        notice = wait_for(lambda: hook_notice(page), timeout=10, what="the missing-hook notice")
        assert notice.startswith(f"Not found on this page: {label} (tried [data-qa=\"{hook}\"]"), notice
        assert notice.count("(tried") == 1
    finally:
        page.close()


def test_no_notice_where_fair_play_has_the_extension_off(chromium, site):
    context, worker, _ = chromium
    set_options(worker, modes={})   # the defaults: duels off
    page = context.new_page()
    try:
        start(context, page, site, "duels", "?break=panorama")
        wait_for(lambda: "Off in duels" in (overlay_state(page) or {}).get("status", ""), timeout=10, what="off")
        time.sleep(3.5)   # past the self-check's grace period
        assert hook_notice(page) == ""
    finally:
        set_options(worker, modes={"duels": True, "battle-royale": True})
        page.close()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run settings.js")
def test_a_profile_saved_with_the_old_defaults_gets_the_new_ones_and_keeps_real_overrides():
    """The options page of earlier versions stored every selector: those lists are past defaults, not the
    player's choice, so loading such a profile gives today's defaults; a selector the player wrote stays."""
    script = "".join((EXTENSION / "shared" / f).read_text(encoding="utf-8") for f in ("constants.js", "settings.js"))
    mine = ['[data-qa="panorama"]', "#my-pano"]
    stored = {"panorama": mine, **{k: v[0] for k, v in {
        "roundNumber": [['[data-qa="round-number"]', ".status_inner__*", ".game-status_roundNumber__*"]],
        "compass": [['[data-qa="compass"]', ".panorama-compass_compassContainer__*", ".compass_compass__*"]],
    }.items()}}
    run = f"""
      const store = {{ settings: {{ selectors: {json.dumps(stored)} }} }};
      globalThis.chrome = {{ storage: {{ local: {{ get: async () => store, set: async (o) => Object.assign(store, o) }} }} }};
      {script}
      (async () => {{
        const loaded = await LF.loadSettings();
        await LF.saveSettings({{}});
        process.stdout.write(JSON.stringify({{ loaded: loaded.selectors, kept: store.settings.selectors,
                                               defaults: LF.DEFAULT_SELECTORS }}));
      }})();
    """
    out = json.loads(subprocess.run(["node", "-e", run], capture_output=True, text=True, timeout=30,
                                    check=True).stdout)
    assert out["loaded"]["roundNumber"] == out["defaults"]["roundNumber"] != stored["roundNumber"]
    assert out["loaded"]["compass"] == out["defaults"]["compass"]
    assert out["loaded"]["panorama"] == mine
    assert out["kept"] == {"panorama": mine}   # saving again stores only the real override
