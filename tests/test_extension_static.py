"""The extension's sources, without a browser: the manifest, the pixels-only promise, the wire format, the linter."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess

import pytest
from paths import FIXTURES

from companion.protocol import FrameHeader
from tests.extension_fixtures import EXTENSION, ROOT

SOURCES = sorted(p for p in EXTENSION.rglob("*") if p.suffix in (".js", ".html", ".json") and p.parent.name != "data")


def manifest() -> dict:
    return json.loads((EXTENSION / "manifest.json").read_text(encoding="utf-8"))


def test_manifest_is_mv3_for_chrome_and_firefox():
    m = manifest()
    # Chrome refuses background.scripts (which Firefox needs) in MV3 before 121, so that is the minimum
    assert m["manifest_version"] == 3 and m["minimum_chrome_version"] == "121"
    assert m["browser_specific_settings"]["gecko"]["strict_min_version"] == "128.0"
    assert m["background"]["service_worker"] == "background.js" and "background.js" in m["background"]["scripts"]
    main_world = [cs for cs in m["content_scripts"] if cs.get("world") == "MAIN"]
    assert len(main_world) == 1 and main_world[0]["run_at"] == "document_start"
    assert "suggested_key" in m["commands"]["toggle-overlay"]
    # pages run on the game only (the tests' copy adds the local site); loopback hosts are for the companion
    for entry in m["content_scripts"] + m["web_accessible_resources"]:
        assert entry["matches"] == ["https://www.geoguessr.com/*"]
    assert {"http://127.0.0.1/*", "http://localhost/*"} <= set(m["host_permissions"])
    # nothing that could read the game's traffic
    assert set(m["permissions"]) <= {"storage", "activeTab"}
    for cs in m["content_scripts"]:
        for path in cs["js"]:
            assert (EXTENSION / path).is_file(), path
    for path in [m["background"]["service_worker"], m["options_ui"]["page"], *m["icons"].values()]:
        assert (EXTENSION / path).is_file(), path


# A string literal (kept whole, so the `//` of a URL inside it stays code) or a comment (dropped).
STRING_OR_COMMENT = re.compile(
    r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|//[^\n]*|/\*.*?\*/""", re.S)

FORBIDDEN = [
    r"__NEXT_DATA__", r"__NUXT__", r"__APOLLO_STATE__", r"XMLHttpRequest", r"\bwebRequest\b", r"\bdebugger\b",
    r"(window|globalThis|self)\.fetch\s*=", r"\bfetch\s*=[^=]", r"/api/", r"perform-guess", r"\.click\(\)",
    r"dispatchEvent", r"\.getAttribute\(\s*['\"]data-(lat|lng)", r"sendBeacon",
]
NETWORK_CALL = re.compile(r"\b(?:fetch|new\s+WebSocket|new\s+EventSource)\s*\(\s*([^),]*)")
# What each part's network calls may open, by the start of their argument; parts not listed open none.
NETWORK_TARGETS = {
    "content/": ("LF.api.runtime.getURL(",),                       # the extension's own files
    "background.js": ("`${LF.httpBase(", "url.href", "dataUrl"),   # the companion (options' URL), the screenshot
    "options/": ("`${url.origin}/v1/", "probe.href"),              # the companion (health, the token probe), from the URL typed in
}


def strip_comments(js: str) -> str:
    return STRING_OR_COMMENT.sub(lambda m: m.group(1) or "", js)


def violations(rel: str, text: str) -> list[str]:
    """What breaks the pixels-only promise in the source file `rel` (relative to extension/)."""
    if not rel.endswith(".js"):
        return [p for p in FORBIDDEN if re.search(p, text)]
    code = strip_comments(text)   # comments may explain what we do not do
    found = [p for p in FORBIDDEN if re.search(p, code)]
    if re.search(r"geoguessr\.com", code, re.I):
        found.append("the game's host")
    allowed = next((v for k, v in NETWORK_TARGETS.items() if rel == k or k.endswith("/") and rel.startswith(k)), ())
    found += [f"network call to {arg}" for arg in NETWORK_CALL.findall(code) if not arg.startswith(allowed)]
    return found


def test_the_world_outlines_are_one_format_from_one_builder():
    """The overlay's mini-map and the look-alike site draw the same outline, in the format the companion's
    own lookup reads (companion/make_world.py builds all of them)."""
    from companion.world import World

    ext, site = EXTENSION / "data" / "world.json", ROOT / "tests" / "geosite" / "static" / "world.json"
    assert ext.read_bytes() == site.read_bytes()
    assert "companion/make_world.py" in json.loads(ext.read_text(encoding="utf-8"))["source"]
    assert World(ext).country_at(48.8566, 2.3522) == ("FR", "France")
    assert World(ext).country_at(-29.5, 28.2)[0] == "LS"   # an enclave: a hole in South Africa's polygon


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(EXTENSION)))
def test_pixels_only_in_the_sources(path):
    """No reading of the game's data or traffic, and no playing: the extension only looks at pixels."""
    assert violations(path.relative_to(EXTENSION).as_posix(), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("rel, snippet", [
    ("background.js", 'fetch("https://www.geoguessr.com/api/v3/games/abc");  // a comment after it'),
    ("background.js", "const ws = new WebSocket(`wss://game-server.geoguessr.com/`);"),
    ("background.js", "const r = await fetch(game + '/v3/games');"),
    ("content/main.js", "/* only a comment */ fetch(location.origin + '/state')"),
    ("shared/settings.js", "fetch(LF.api.runtime.getURL('data/world.json'))"),
    ("content/dom.js", "const x = new XMLHttpRequest(); // no"),
    ("content/dom.js", "const d = document.getElementById('__NEXT_DATA__');"),
])
def test_the_scan_catches_a_planted_violation(rel, snippet):
    assert violations(rel, snippet)


def test_the_scan_ignores_comments_only():
    ok = '// never fetch("https://www.geoguessr.com/api/")\nconst u = "http://x/y"; /* no XMLHttpRequest */'
    assert violations("background.js", ok) == []
    assert violations("background.js", ok.replace("// never", "")) != []


def test_main_world_script_only_keeps_the_drawing_buffer():
    code = strip_comments((EXTENSION / "content" / "preserve-drawing-buffer.js").read_text(encoding="utf-8"))
    assert "preserveDrawingBuffer: true" in code
    for word in ("fetch", "document", "window", "JSON", "postMessage", "addEventListener"):
        assert word not in code


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_frame_encoding_is_what_the_companion_parses(tmp_path):
    """shared/protocol.js's frames, decoded the way companion/protocol.py documents, validate as FrameHeader."""
    image = next(FIXTURES.glob("*.jpg")).read_bytes()
    script = f"""
      const fs = require("fs");
      for (const f of ["constants.js", "protocol.js"]) eval(fs.readFileSync({json.dumps(str(EXTENSION / "shared"))} + "/" + f, "utf8"));
      const img = new Uint8Array(Buffer.from({json.dumps(base64.b64encode(image).decode())}, "base64"));
      const out = [
        LF.encodeFrame(LF.frameHeader("a1b2c3", 7, 361.5, 8), img),
        LF.encodeFrame(LF.frameHeader("a1b2c3", 8, null), img),
      ].map((f) => Buffer.from(f).toString("base64"));
      console.log(JSON.stringify({{ frames: out, flag: LF.flagEmoji("fr"), bad: LF.flagEmoji("??"),
                                    base: LF.httpBase("ws://127.0.0.1:8765/ws") }}));
    """
    res = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    headers = []
    for b64 in res["frames"]:
        msg = base64.b64decode(b64)
        (n,) = struct.unpack(">I", msg[:4])
        headers.append(FrameHeader.model_validate_json(msg[4:4 + n]))
        assert msg[4 + n:] == image
    assert headers[0].round == "a1b2c3" and headers[0].frame == 7 and abs(headers[0].heading - 1.5) < 1e-9
    assert headers[0].top_k == 8 and headers[1].heading is None and headers[1].top_k is None
    assert res["flag"] == "🇫🇷" and res["bad"] == "🏳️" and res["base"] == "http://127.0.0.1:8765"


BACKGROUND_STANDINS = """
      const fs = require("fs"), vm = require("vm");
      const on = () => ({ addListener() {} });
      const shots = [], sockets = [];
      globalThis.chrome = {
        runtime: { onMessage: on(), openOptionsPage() {} }, commands: { onCommand: on() }, action: { onClicked: on() },
        storage: { onChanged: on(), local: { get: async () => ({ settings: { token: "t" } }) } },
        tabs: { onRemoved: on(), sendMessage: async () => {}, query: async () => [],
                captureVisibleTab: async () => { shots.push(performance.now()); return "data:,"; } },
      };
      globalThis.WebSocket = class { constructor() { this.readyState = 0; sockets.push(this); }
                                     close() { this.readyState = 3; } };
      globalThis.fetch = async () => ({ blob: async () => new Blob([]) });
      globalThis.createImageBitmap = async () => ({ width: 100, height: 100 });
      globalThis.OffscreenCanvas = class { getContext() { return { drawImage() {} }; }
                                           async convertToBlob() { return new Blob(["jpeg"]); } };
      // node has no FileReader (LF.blobToBase64 reads blobs through it, as content scripts must)
      globalThis.FileReader = class { readAsDataURL(blob) { blob.arrayBuffer().then((b) => {
        this.result = "data:image/jpeg;base64," + Buffer.from(b).toString("base64"); this.onload(); }); } };
      for (const f of ["shared/constants.js", "shared/settings.js", "shared/protocol.js", "background.js"]) {
        vm.runInThisContext(fs.readFileSync(EXT + "/" + f, "utf8"), { filename: f });
      }
""".replace("EXT", json.dumps(str(EXTENSION)))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_background_opens_one_socket_and_spaces_captures():
    """background.js under node with stand-ins for the browser: three overlapping connect() calls leave one
    live socket; three tabs' screenshots at once are taken CAPTURE_INTERVAL_MS apart."""
    script = BACKGROUND_STANDINS + """
      (async () => {
        lfState.tabs.add(1);
        await Promise.all([connect(), connect(), connect()]);
        const rect = { x: 0, y: 0, width: 100, height: 100, viewportWidth: 100 };
        const crops = await Promise.all([1, 2, 3].map((windowId) => captureTab({ windowId }, rect)));
        console.log(JSON.stringify({ live: sockets.filter((s) => s.readyState < 2).length, image: crops[0].image,
                                     gaps: shots.slice(1).map((t, i) => t - shots[i]) }));
      })();
    """
    res = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    interval = int(re.search(r"CAPTURE_INTERVAL_MS = (\d+)", (EXTENSION / "background.js").read_text()).group(1))
    assert res["live"] == 1 and base64.b64decode(res["image"]) == b"jpeg"
    assert len(res["gaps"]) == 2 and min(res["gaps"]) >= interval - 5, res["gaps"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_background_passes_over_superseded_replies():
    """A `superseded` reply (a newer frame of the round came first) shows nothing in the tab; the newer
    frame's answer and an error still reach it."""
    script = BACKGROUND_STANDINS + """
      const sent = [];
      chrome.tabs.sendMessage = async (tabId, msg) => { sent.push([tabId, msg.type, msg.code || null]); };
      lfState.pending.set(11, { tabId: 5, round: "r", localFrame: 1 });
      lfState.pending.set(12, { tabId: 5, round: "r", localFrame: 2 });
      lfState.pending.set(13, { tabId: 5, round: "r", localFrame: 3 });
      const mark = () => {};
      onServerMessage(JSON.stringify({ type: "superseded", v: 1, round: "r", frame: 11, by: 12 }), mark);
      onServerMessage(JSON.stringify({ type: "prediction", v: 1, round: "r", frame: 12, frames: 1, countries: [],
        regions: [], point: { lat: 0, lng: 0 }, cells: [], latency_ms: 1, model: "m" }), mark);
      onServerMessage(JSON.stringify({ type: "error", v: 1, code: "bad_image", message: "x", frame: 13 }), mark);
      setTimeout(() => console.log(JSON.stringify({ sent, pending: [...lfState.pending.keys()] })), 50);
    """
    res = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    assert res["pending"] == []
    assert [m for m in res["sent"] if m[1] != "shapes"] == [[5, "prediction", None], [5, "error", "bad_image"]]


WEB_EXT = ROOT / "node_modules" / ".bin" / "web-ext"   # pinned in package-lock.json; `make test` installs it


@pytest.mark.slow
@pytest.mark.skipif(not WEB_EXT.exists(), reason="needs web-ext: `make test` installs it (npm ci)")
def test_web_ext_lint_passes():
    out = subprocess.run([str(WEB_EXT), "lint", "--source-dir", str(EXTENSION), "--output", "json"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(out.stdout[out.stdout.index("{"):]) if "{" in out.stdout else {}
    assert out.returncode == 0 and report.get("errors") == [], out.stdout[-3000:] + out.stderr[-2000:]
    # Known and accepted: Firefox ignores the Chrome service worker (it runs background.scripts instead), and
    # Firefox 128-139 ignore data_collection_permissions (Mozilla asks for the key all the same).
    accepted = {"BACKGROUND_SERVICE_WORKER_IGNORED", "KEY_FIREFOX_UNSUPPORTED_BY_MIN_VERSION",
                "KEY_FIREFOX_ANDROID_UNSUPPORTED_BY_MIN_VERSION"}
    assert {w["code"] for w in report["warnings"]} <= accepted, report["warnings"]
