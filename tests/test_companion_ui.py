"""The web UI in a real (headless) Chromium: choose, drop and paste an image, see the predictions and
the shaded map; play one round. Saves a screenshot to work/screenshots/companion-ui.png (docs/img/ with
LF_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest
from companion_fixtures import FIXTURE_IMAGES
from paths import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# the committed picture is refreshed only on purpose; a plain run writes under work/ (ignored by git)
SCREENSHOTS = ROOT / ("docs/img" if os.environ.get("LF_UPDATE_SCREENSHOTS") == "1" else "work/screenshots")
SCREENSHOT = SCREENSHOTS / "companion-ui.png"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian /usr/bin/chromium")]

# pixels of the map in the cells' colour (amber rgba(245,166,35,a) over the dark map) and the amber pin (opaque)
COUNT_PIXELS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let cells = 0, pin = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if (r > 120 && g > 70 && b < 60 && r > g) cells++;
    if (Math.abs(r - 245) < 6 && Math.abs(g - 166) < 6 && b < 50) pin++;
  }
  return {cells, pin};
}"""

DROP_OR_PASTE = """async ([kind, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], "frame.jpg", {type: "image/jpeg"}));
  if (kind === "drop") {
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
  } else {
    document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true}));
  }
}"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-quic", "--disable-component-update"])
        yield b
        b.close()


def expected_top(server, path: Path) -> str:
    r = httpx.post(f"{server.http}/v1/predict", content=path.read_bytes(), headers={"X-LF-Token": server.token}, timeout=60)
    return r.json()["countries"][0]["name"]


def test_predict_page_with_map_and_screenshot(browser, main_server):
    page = browser.new_page(viewport={"width": 1400, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{main_server.http}/?token={main_server.token}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.text_content("#token") == main_server.token
    assert "model" in page.text_content("#model")
    before = page.evaluate(COUNT_PIXELS, "map")

    # 1) the file chooser
    path = FIXTURE_IMAGES[0]
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    page.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
    names = page.locator("#countries li").all_text_contents()
    assert len(names) == 5 and names[0].startswith(expected_top(main_server, path))
    after = page.evaluate(COUNT_PIXELS, "map")
    assert after["cells"] > before["cells"] + 50 and after["pin"] > 20, (before, after)

    # 2) drop and 3) paste another image: the answer follows the new image
    for kind, img in (("drop", FIXTURE_IMAGES[5]), ("paste", FIXTURE_IMAGES[9])):
        page.evaluate("document.getElementById('status').textContent = ''")
        page.evaluate(DROP_OR_PASTE, [kind, base64.b64encode(img.read_bytes()).decode()])
        page.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
        assert page.locator("#countries li").first.text_content().startswith(expected_top(main_server, img))

    page.set_input_files("#file", str(path))
    page.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000
    assert not errors, errors
    assert all(u.startswith(main_server.http) or u.startswith("blob:") for u in requests), requests  # no CDN
    page.close()


def test_play_one_round_in_the_page(browser, main_server):
    page = browser.new_page(viewport={"width": 1400, "height": 820})
    page.goto(f"{main_server.http}/?token={main_server.token}#play")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    page.fill("#player", "ui-player")
    page.click("#new-round")
    page.wait_for_selector("#guess-form:not([hidden])", timeout=30_000)
    page.wait_for_function("document.getElementById('play-image').complete && document.getElementById('play-image').naturalWidth > 0")
    for i, name in enumerate(["France", "Brazil", "Japan", "Kenya", "Canada"]):
        page.fill(f"input[name=guess{i + 1}]", name)
    page.click("#guess-form button[type=submit]")
    page.wait_for_selector("#play-result:not([hidden])", timeout=60_000)
    assert page.text_content("#truth").startswith("It was ")
    assert page.locator("#human-answer li").count() == 5 and page.locator("#model-answer li").count() == 5
    assert page.locator("#scoreboard tbody tr").count() == 2
    truth = page.evaluate(COUNT_PIXELS.replace("Math.abs(r - 245) < 6 && Math.abs(g - 166) < 6 && b < 50", "g > 180 && r < 90 && b > 120 && b < 170"), "play-map")
    assert truth["pin"] > 20  # the green truth pin is on the map
    scores = httpx.get(f"{main_server.http}/v1/play/scores", params={"player": "ui-player"}).json()
    assert scores["rounds"] == 1
    page.close()
