"""The web UI as a player sees it, in real (headless) Chromium: one tab's panel at a time (by what is
visible, not by attributes), the product's palette, and Play's polish: common country names, an
unknown entry named without losing the others, "1 round", and the model's pin and cells on the result
map; Predict's confidence label. Plus the alias table itself and the Play API behind the page. Saves the
Predict and Play tab screenshots beside companion-ui.png (docs/img/ with LF_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import httpx
import pytest
from companion_fixtures import FIXTURE_IMAGES
from test_companion_ui import CHROMIUM, SCREENSHOTS, browser  # noqa: F401  (the module's Chromium fixture)

from companion.country_names import ALIASES, CountryNames, normalize
from companion.world import world


def in_chromium(test):
    return pytest.mark.e2e(pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian /usr/bin/chromium")(test))


# The palette of issue 10 (background, panel, text, muted, accent/cells/model pin, truth, player, errors)
PALETTE = {"--bg": "#14171c", "--panel": "#1d2128", "--ink": "#e8eaed", "--muted": "#9aa0a6", "--accent": "#f5a623",
           "--truth": "#3ecf8e", "--player": "#4c9aff", "--bad": "#ff5c5c"}

# Pixels of a canvas matching a colour predicate, with their centroid (in canvas pixels)
PIXELS = """([id, kind]) => {
  const tests = {
    pin: (r, g, b) => Math.abs(r - 245) < 6 && Math.abs(g - 166) < 6 && b < 50,           // opaque amber
    cells: (r, g, b) => r > 120 && g > 70 && b < 60 && r > g && r < 235,                  // amber, translucent
    truth: (r, g, b) => Math.abs(r - 62) < 10 && Math.abs(g - 207) < 10 && Math.abs(b - 142) < 10,
    player: (r, g, b) => b > 100 && b > r + 60 && b > g + 30,                              // blue fill/outline
  };
  const test = tests[kind];
  const c = document.getElementById(id);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0, sx = 0, sy = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (test(d[i], d[i + 1], d[i + 2])) { n++; const k = i / 4; sx += k % c.width; sy += Math.floor(k / c.width); }
  }
  return {n, x: n ? sx / n : null, y: n ? sy / n : null, w: c.width, h: c.height};
}"""


# Pixels of the Play map that its cells change: the page's own drawMap, redrawn without the cells on a
# canvas of the same size, against what is shown; "warmer" counts the changes toward amber (more red, less blue)
CELLS_DRAWN = """(args) => {
  const shown = document.getElementById("play-map");
  const bare = document.createElement("canvas");
  bare.width = shown.width; bare.height = shown.height;
  drawMap(bare, { ...args, cells: [] });
  const a = shown.getContext("2d").getImageData(0, 0, shown.width, shown.height).data;
  const b = bare.getContext("2d").getImageData(0, 0, bare.width, bare.height).data;
  let changed = 0, warmer = 0;
  for (let i = 0; i < a.length; i += 4) {
    const dr = a[i] - b[i], db = a[i + 2] - b[i + 2];
    if (Math.abs(dr) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(db) > 6) { changed++; if (dr - db > 0) warmer++; }
  }
  return { changed, warmer };
}"""


def open_ui(browser, server, fragment: str = ""):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.http}/?token={server.token}{fragment}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, errors


def shown(page, selector: str) -> bool:
    """Visible and taking room on the page: what a person would see."""
    loc = page.locator(selector)
    box = loc.bounding_box()
    return loc.is_visible() and box is not None and box["width"] > 0 and box["height"] > 0


def switch_tab(page, name: str) -> None:
    """Click a tab and wait for the page's hashchange handler: the hash itself changes a task earlier."""
    page.click(f"#tab-{name}")
    page.wait_for_function("(name) => document.getElementById('tab-' + name).classList.contains('active')", arg=name)


# ---- one panel at a time ----

@in_chromium
def test_one_panel_at_a_time_and_predict_state_stays_on_predict(browser, main_server, tmp_path):  # noqa: F811
    page, errors = open_ui(browser, main_server)
    assert shown(page, "#predict") and not shown(page, "#play")
    assert not shown(page, "#play-map") and not shown(page, "#new-round")

    # a Predict error, then a real answer: both belong to Predict only
    not_image = tmp_path / "notes.txt"
    not_image.write_text("not an image")
    page.set_input_files("#file", str(not_image))
    assert page.get_by_text("That is not an image.").is_visible()
    switch_tab(page, "play")
    assert shown(page, "#play") and not shown(page, "#predict")
    assert not page.get_by_text("That is not an image.").is_visible()
    assert not shown(page, "#status") and not shown(page, "#drop")
    # Play is not pushed down by an invisible Predict: it starts right under the header
    header = page.locator("header").bounding_box()
    assert page.locator("#play").bounding_box()["y"] <= header["y"] + header["height"] + 1

    switch_tab(page, "predict")
    assert shown(page, "#predict") and not shown(page, "#play")
    assert page.get_by_text("That is not an image.").is_visible()  # kept where it happened
    page.set_input_files("#file", str(FIXTURE_IMAGES[0]))
    page.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
    assert shown(page, "#results")
    switch_tab(page, "play")
    assert not shown(page, "#results") and not shown(page, "#countries")
    assert page.locator("#tab-play").evaluate("e => e.classList.contains('active')")
    assert not page.locator("#tab-predict").evaluate("e => e.classList.contains('active')")
    assert not errors, errors
    page.close()

    # opened on #play directly (a bookmark): Play alone
    page, errors = open_ui(browser, main_server, "#play")
    assert shown(page, "#play") and not shown(page, "#predict") and not shown(page, "#drop")
    assert not errors, errors
    page.close()


@in_chromium
def test_the_palette(browser, main_server):  # noqa: F811
    page, _ = open_ui(browser, main_server)
    got = page.evaluate("(names) => names.map((n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim())",
                        list(PALETTE))
    assert dict(zip(PALETTE, got, strict=True)) == PALETTE
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 28)"
    assert page.evaluate("getComputedStyle(document.body).color") == "rgb(232, 234, 237)"
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(29, 33, 40)"
    page.set_input_files("#file", str(FIXTURE_IMAGES[3]))
    page.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
    assert page.evaluate(PIXELS, ["map", "cells"])["n"] > 50        # amber cells
    assert page.evaluate(PIXELS, ["map", "pin"])["n"] > 20          # amber pin
    page.close()


@in_chromium
def test_predict_shows_the_replys_confidence_label(browser, main_server):  # noqa: F811
    """The label follows the reply's `confidence` for each level the fixtures reach (the server says which)."""
    tok = {"X-LF-Token": main_server.token, "Content-Type": "image/jpeg"}
    by_level: dict[str, tuple] = {}
    for path in FIXTURE_IMAGES:
        pred = httpx.post(f"{main_server.http}/v1/predict", content=path.read_bytes(), headers=tok, timeout=60).json()
        by_level.setdefault(pred["confidence"], (path, pred))
        if len(by_level) == 3:
            break
    if "unsure" not in by_level or len(by_level) < 2:
        pytest.skip(f"the fixtures reach only {sorted(by_level)} with this model")
    text = {"confident": "Confident", "likely": "Likely", "unsure": "Not sure — top guesses"}
    page, errors = open_ui(browser, main_server)
    for level, (path, pred) in by_level.items():
        page.set_input_files("#file", str(path))
        page.wait_for_function("(level) => document.getElementById('verdict').dataset.level === level", arg=level,
                               timeout=60_000)
        assert page.text_content("#verdict") == text[level] and shown(page, "#verdict")
        top = page.locator("#countries li").first
        assert top.text_content().startswith(pred["countries"][0]["name"])
        weight = int(top.locator("span").nth(1).evaluate("e => getComputedStyle(e).fontWeight"))
        assert (weight >= 700) == (level != "unsure"), (level, weight)   # a bold winner only when it is one
        colour = page.evaluate("getComputedStyle(document.getElementById('verdict')).color")
        assert colour == {"confident": "rgb(62, 207, 142)", "likely": "rgb(245, 166, 35)",
                          "unsure": "rgb(154, 160, 166)"}[level]
    level = "confident" if "confident" in by_level else next(lv for lv in by_level if lv != "unsure")
    page.set_input_files("#file", str(by_level[level][0]))
    page.wait_for_function("(level) => document.getElementById('verdict').dataset.level === level", arg=level)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "companion-ui-predict.png"))
    assert not errors, errors
    page.close()


# ---- Play ----

def test_alias_table_is_normalized_and_every_alias_resolves():
    names = CountryNames(world().names)
    for alias, code in ALIASES.items():
        assert normalize(alias) == alias, alias           # written as a player's text is looked up
        assert code in world().names, (alias, code)
        assert names.code(alias) == code, alias           # not shadowed by a map name meaning another country


@pytest.mark.parametrize("text, code", [
    ("usa", "US"), ("USA", "US"), ("U.S.A.", "US"), ("united states", "US"), ("us", "US"), ("America", "US"),
    ("uk", "GB"), ("UK", "GB"), ("Great Britain", "GB"), ("england", "GB"), ("United Kingdom", "GB"),
    ("south korea", "KR"), ("South  Korea ", "KR"), ("korea", "KR"), ("north korea", "KP"),
    ("the netherlands", "NL"), ("holland", "NL"), ("Côte d'Ivoire", "CI"), ("ivory coast", "CI"),
    ("czechia", "CZ"), ("Bosnia & Herzegovina", "BA"), ("st lucia", "LC"), ("Bahamas", "BS"), ("curacao", "CW"),
    ("new zealand", "NZ"), ("TK", "TK"), ("France", "FR"), ("russia", "RU"), ("uae", "AE"), ("turkiye", "TR"),
])
def test_common_names(text, code):
    assert CountryNames(world().names).code(text) == code


@pytest.mark.parametrize("text", ["atlantis", "", "the", "u", "united", "korea south north"])
def test_not_a_country(text):
    assert CountryNames(world().names).code(text) is None


def test_guess_api_names_every_unknown_entry_and_returns_the_models_map(main_server):
    base, tok = main_server.http, {"X-LF-Token": main_server.token}
    rnd = httpx.post(f"{base}/v1/play/round", json={"player": "api-aliases"}, headers=tok).json()
    bad = httpx.post(f"{base}/v1/play/guess", headers=tok,
                     json={"round": rnd["round"], "guesses": ["usa", "Atlantis", "uk", "Narnia"]})
    assert bad.status_code == 400
    body = bad.json()
    assert body["entries"] == [1, 3] and "'Atlantis'" in body["message"] and "'Narnia'" in body["message"]
    twice = httpx.post(f"{base}/v1/play/guess", headers=tok, json={"round": rnd["round"], "guesses": ["usa", "US"]})
    assert twice.status_code == 400 and twice.json()["entries"] == [1] and "twice" in twice.json()["message"]

    ok = httpx.post(f"{base}/v1/play/guess", headers=tok,
                    json={"round": rnd["round"], "guesses": ["usa", "uk", "south korea"]}, timeout=60)
    assert ok.status_code == 200, ok.text
    res = ok.json()
    assert [g["code"] for g in res["guesses"]] == ["US", "GB", "KR"]
    # the model's map is the model's answer on this very image, as /v1/predict gives it
    image = httpx.get(base + rnd["image"]).content
    pred = httpx.post(f"{base}/v1/predict", content=image, headers=tok | {"Content-Type": "image/jpeg"}, timeout=60).json()
    assert res["model_point"] == pytest.approx(pred["point"])
    assert [c["id"] for c in res["model_cells"]] == [c["id"] for c in pred["cells"]]
    assert [m["code"] for m in res["model"]] == [c["code"] for c in pred["countries"]]


@in_chromium
def test_play_in_the_page_aliases_unknown_entries_plural_and_the_models_map(browser, main_server):  # noqa: F811
    page, errors = open_ui(browser, main_server, "#play")
    page.fill("#player", "alias-player")
    typed = ["usa", "Atlantis", "uk", "Narnia", "south korea"]
    for n in range(1, 3):
        page.click("#new-round")
        page.wait_for_selector("#guess-form:not([hidden])", timeout=30_000)
        assert "images left" in page.text_content("#play-left")
        for i, text in enumerate(typed):
            page.fill(f"input[name=guess{i + 1}]", text)
        page.click("#guess-form button[type=submit]")
        page.wait_for_function("document.getElementById('play-status').textContent.includes('Atlantis')")
        status = page.text_content("#play-status")
        assert "Narnia" in status and "usa" not in status and shown(page, "#play-status")
        # the two unknown entries are marked, every entry is kept as typed, the first bad one has focus
        assert [page.input_value(f"input[name=guess{i + 1}]") for i in range(5)] == typed
        invalid = page.evaluate("[...document.querySelectorAll('#guess-inputs input')].map((i) => i.classList.contains('invalid'))")
        assert invalid == [False, True, False, True, False]
        assert page.evaluate("document.activeElement.name") == "guess2"
        assert not shown(page, "#play-result")

        page.fill("input[name=guess2]", "france")
        page.fill("input[name=guess4]", "")                        # an emptied entry is just left out
        with page.expect_response("**/v1/play/guess") as answered:
            page.click("#guess-form button[type=submit]")
        page.wait_for_selector("#play-result:not([hidden])", timeout=60_000)
        answer = answered.value.json()
        assert page.locator("#human-answer li").all_text_contents() == [
            "United States of America", "France", "United Kingdom", "South Korea"]
        assert page.text_content("#play-status") == ("1 round played" if n == 1 else f"{n} rounds played")
        assert not page.evaluate("[...document.querySelectorAll('#guess-inputs input')].some((i) => i.classList.contains('invalid'))")
        assert shown(page, "#play-legend")

    # the result map: the truth (green), the model's pin where the model put it, its cells, the player's countries
    truth = page.evaluate(PIXELS, ["play-map", "truth"])
    pin = page.evaluate(PIXELS, ["play-map", "pin"])
    assert truth["n"] > 20
    # the cells: the map as shown against the same map drawn without them. How many pixels they take and how
    # strong their amber is depend on the image (a small top cell, an unsure answer's faint shading), so what
    # is asserted is that the model's cells were drawn and that they only ever warm the map
    cells = page.evaluate(CELLS_DRAWN, {"truth": {"lat": answer["truth"]["lat"], "lng": answer["truth"]["lng"]},
                                        "point": answer["model_point"], "cells": answer["model_cells"],
                                        "player": [g["code"] for g in answer["guesses"]]})
    assert cells["changed"] > 0 and cells["warmer"] >= 0.95 * cells["changed"], cells
    assert page.evaluate(PIXELS, ["play-map", "player"])["n"] > 100
    tok = {"X-LF-Token": main_server.token}
    image = httpx.get(page.evaluate("document.getElementById('play-image').src")).content
    point = httpx.post(f"{main_server.http}/v1/predict", content=image, headers=tok | {"Content-Type": "image/jpeg"},
                       timeout=60).json()["point"]
    px, py = (point["lng"] + 180) / 360 * pin["w"], (90 - point["lat"]) / 180 * pin["h"]
    if (px - truth["x"]) ** 2 + (py - truth["y"]) ** 2 > 16 ** 2:   # the truth pin, drawn last, hides it otherwise
        assert pin["n"] > 20 and abs(pin["x"] - px) < 3 and abs(pin["y"] - py) < 3, (pin, px, py)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "companion-ui-play.png"))
    assert not errors, errors
    page.close()
