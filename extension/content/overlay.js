// The overlay: a small draggable, collapsible panel (status light, how sure the model is, top countries with
// flags and bars, top regions, latency, the round log on the summary screen) and a mini-map beside the game's
// guess map (the list's cells, the model's pin, a world inset when the guesses are spread). It only shows; it
// never touches the game's map or guess button, and it is kept off them.
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

// One palette for the overlay, the options page and the companion's web UI.
LF.PALETTE = {
  bg: "#14171c", panel: "#1d2128", text: "#e8eaed", muted: "#9aa0a6", accent: "#f5a623",
  truth: "#3ecf8e", player: "#4c9aff", error: "#ff5c5c",
};

const OVERLAY_CSS = `
:host { all: initial; --bg: ${LF.PALETTE.bg}; --panel: ${LF.PALETTE.panel}; --text: ${LF.PALETTE.text};
  --muted: ${LF.PALETTE.muted}; --accent: ${LF.PALETTE.accent}; --ok: ${LF.PALETTE.truth}; --err: ${LF.PALETTE.error};
  /* text scales with the viewport: 12 px at 800-1280 px wide, up to 16 px at 1920 and beyond */
  --fs: clamp(12px, calc(0.45vw + 6px), 16px); }
.panel { position: fixed; z-index: 2147483646; width: calc(var(--fs) * 21); font: var(--fs)/1.35 system-ui, sans-serif;
  color: var(--text); background: color-mix(in srgb, var(--panel) 94%, transparent); border: 1px solid #2c323c;
  border-radius: 10px; box-shadow: 0 6px 24px rgba(0,0,0,0.45); user-select: none; overflow: hidden; }
header { display: flex; align-items: center; gap: 6px; padding: 6px 8px; cursor: move; background: var(--bg); }
header b { flex: 1; letter-spacing: .02em; }
.light { width: 9px; height: 9px; border-radius: 50%; background: var(--accent); box-shadow: 0 0 6px currentColor; }
.light[data-state="connected"] { background: var(--ok); }
.light[data-state="not_running"], .light[data-state="wrong_token"], .light[data-state="refused"],
.light[data-state="no_token"], .light[data-state="bad_url"], .light[data-state="no_panorama"],
.light[data-state="unreadable"], .light[data-state="timeout"] { background: var(--err); }
.light[data-state="off"] { background: var(--muted); box-shadow: none; }
header button { all: unset; cursor: pointer; width: 1.5em; text-align: center; border-radius: 4px; opacity: .8; }
header button:hover { background: rgba(255,255,255,0.15); opacity: 1; }
header button[data-busy] { background: var(--accent); color: var(--bg); opacity: 1; cursor: progress; }
header button[data-busy] span { display: inline-block; animation: spin 1s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
.body { padding: 6px 10px 8px; }
.panel.collapsed .body { display: none; }
.status { color: var(--accent); margin: 2px 0 6px; }
.status:empty { display: none; }
.status[data-tone="error"] { color: var(--err); }
.status[data-tone="muted"] { color: var(--muted); }
button.act { all: unset; cursor: pointer; display: inline-block; margin: 0 0 6px; padding: 2px 10px; border-radius: 10px;
  background: var(--accent); color: var(--bg); font-weight: 600; }
.verdict { margin: 0 0 4px; font-weight: 600; }
.verdict[data-level="confident"] { color: var(--ok); }
.verdict[data-level="likely"] { color: var(--accent); }
.verdict[data-level="unsure"] { color: var(--muted); font-weight: 500; }
ol { list-style: none; margin: 0; padding: 0; }
li { display: grid; grid-template-columns: 1.6em 1fr 3.2em; align-items: center; column-gap: 6px; margin: 3px 0; }
.flag { font-size: 1.25em; line-height: 1; }
.name { overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.p { text-align: right; font-variant-numeric: tabular-nums; }
.bar { grid-column: 2 / 4; height: 4px; border-radius: 2px; background: rgba(255,255,255,0.12); }
.bar i { display: block; height: 100%; border-radius: 2px; background: var(--accent); }
ol.sure li:first-child .name { font-weight: 700; }
ol.unsure .bar i { background: var(--muted); }
.regions { margin-top: 6px; padding-top: 5px; border-top: 1px solid rgba(255,255,255,0.12); color: var(--muted); }
.regions div { display: flex; justify-content: space-between; gap: 8px; }
.regions span:first-child { overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.log { margin-top: 4px; }
.log table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.log td { padding: 2px 4px 2px 0; border-top: 1px solid rgba(255,255,255,0.1); vertical-align: top; }
.log td:last-child { color: var(--muted); white-space: nowrap; text-align: right; }
.log a { display: inline-block; margin-top: 6px; color: var(--accent); }
.foot { margin-top: 6px; color: var(--muted); font-size: .9em; font-variant-numeric: tabular-nums; }
.foot:empty { display: none; }
.minimap { position: fixed; z-index: 2147483645; width: clamp(160px, 22vw, 420px); aspect-ratio: 600 / 320;
  border-radius: 6px; overflow: hidden; border: 1px solid #2c323c; box-shadow: 0 4px 16px rgba(0,0,0,0.4);
  background: var(--bg); pointer-events: none; }
.minimap canvas { display: block; width: 100%; height: 100%; }
.minimap .label { position: absolute; left: 6px; top: 4px; font: calc(var(--fs) * 0.85) system-ui, sans-serif;
  color: var(--text); background: color-mix(in srgb, var(--bg) 80%, transparent); border-radius: 3px; padding: 0 4px; }
[hidden] { display: none !important; }
`;

const LEVEL_TEXT = { confident: "Confident", likely: "Likely", unsure: "Not sure — top guesses" };
const ERROR_STATES = new Set(["not_running", "wrong_token", "refused", "no_token", "bad_url", "no_panorama", "unreadable", "timeout"]);
// States the player fixes in the options: the panel offers a button that opens them.
const OPTIONS_STATES = new Set(["wrong_token", "no_token", "refused", "bad_url", "no_panorama", "unreadable", "off"]);
const KEEP_OUT_MARGIN = 8;

// The box the round counter sits in (with the score, or the duels' health bars): its largest ancestor that is
// still a small part of the window (the next one up is the game's whole layout).
function statusBox(roundNumber) {
  const small = (r) => r.width > 0 && r.height > 0 && r.width * r.height < 0.15 * window.innerWidth * window.innerHeight;
  let box = null;
  for (let el = roundNumber; el && el !== document.body; el = el.parentElement) {
    const r = el.getBoundingClientRect();
    if (!small(r)) break;
    box = r;
  }
  return box;
}

// A DOM element from a tag, attributes and children (text or elements): no HTML strings, no injection.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

const pctText = (p) => {
  const pct = Math.round(p * 1000) / 10;
  return `${pct < 10 ? pct.toFixed(1) : Math.round(pct)}%`;
};

const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

LF.Overlay = class Overlay {
  constructor({ onCaptureNow }) {
    this.host = document.createElement("div");
    this.host.id = "lf-overlay-host";
    const shadow = this.host.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = OVERLAY_CSS;
    shadow.append(
      style,
      h("div", { class: "panel", "data-lf": "panel" },
        h("header", { "data-lf": "handle" },
          h("span", { class: "light", "data-lf": "light" }), h("b", {}, "Lost & Found"),
          h("button", { "data-lf": "capture", title: "Ask again now", "aria-pressed": "false" }, h("span", {}, "⟳")),
          h("button", { "data-lf": "collapse", title: "Collapse" }, "–")),
        h("div", { class: "body" },
          h("div", { class: "status", "data-lf": "status" }),
          h("div", { class: "status", "data-lf": "hooks", hidden: "" }),
          h("button", { class: "act", "data-lf": "open-options", hidden: "" }, "Open the options"),
          h("div", { class: "verdict", "data-lf": "verdict", hidden: "" }),
          h("ol", { "data-lf": "countries" }),
          h("div", { class: "regions", "data-lf": "regions", hidden: "" }),
          h("div", { class: "log", "data-lf": "log", hidden: "" }),
          h("div", { class: "foot", "data-lf": "foot" }))),
      h("div", { class: "minimap", "data-lf": "minimap", hidden: "" },
        h("canvas", { width: "600", height: "320" }), h("div", { class: "label" }, "Lost & Found: where it could be")),
    );
    this.$ = (name) => shadow.querySelector(`[data-lf="${name}"]`);
    this.panel = this.$("panel");
    this.minimap = this.$("minimap");
    this.visible = true;
    this.world = null;
    this.last = null;
    this.keepOut = [];
    this.restMap = null;   // the guess map's smallest rect in this viewport
    this.exportUrl = null;
    this.$("capture").addEventListener("click", () => {
      if (!this.$("capture").dataset.busy) onCaptureNow();
    });
    this.$("collapse").addEventListener("click", () => this.setCollapsed(!this.panel.classList.contains("collapsed")));
    this.$("open-options").addEventListener("click", () => LF.api.runtime.sendMessage({ type: LF.MSG.OPEN_OPTIONS }).catch(() => {}));
    this.makeDraggable();
    LF.api.storage.local.get("overlayPos").then(({ overlayPos }) => this.place(overlayPos || { left: 16, top: 16, collapsed: false }));
    fetch(LF.api.runtime.getURL("data/world.json")).then((r) => r.json()).then((w) => {
      this.world = w;
      if (this.last) this.drawMap(this.last.prediction, this.last.shapes);
    }).catch(() => {});
  }

  attach() {
    if (!this.host.isConnected) document.documentElement.appendChild(this.host);
  }

  // In the viewport, and never over the guess map, its Guess button or the game's status box: moved to the
  // nearest spot clear of all of them (beside or above one may be on another: at 800×600 above the map is the
  // score box); where none is clear, left where it was asked to be.
  place({ left, top, collapsed }) {
    this.panel.classList.toggle("collapsed", !!collapsed);
    const w = this.panel.offsetWidth || 260, hgt = this.panel.offsetHeight || 40;
    const clamp = (x, y) => [Math.min(Math.max(0, window.innerWidth - w), Math.max(0, x)),
                             Math.min(Math.max(0, window.innerHeight - hgt), Math.max(0, y))];
    const [x, y] = clamp(left, top);
    const clear = ([cx, cy]) => !this.keepOut.some((k) => overlaps({ left: cx, top: cy, right: cx + w, bottom: cy + hgt }, k));
    let best = [x, y];
    if (!clear(best)) {
      const xs = [x, ...this.keepOut.flatMap((k) => [k.left - w, k.right])];
      const ys = [y, ...this.keepOut.flatMap((k) => [k.top - hgt, k.bottom])];
      const spots = xs.flatMap((cx) => ys.map((cy) => clamp(cx, cy))).filter(clear);
      if (spots.length) best = spots.sort((a, b) => Math.hypot(a[0] - x, a[1] - y) - Math.hypot(b[0] - x, b[1] - y))[0];
    }
    this.panel.style.left = `${best[0]}px`;
    this.panel.style.top = `${best[1]}px`;
  }

  // The areas to keep clear: the guess map and what sits with it (the Guess button shares its container), and
  // the status box around the round counter (round, score; the duels' health bars). The map at rest: the real
  // one grows while hovered, and the panel should not jump away each time.
  setKeepOut(guessMap, roundNumber) {
    const rects = [];
    let m = guessMap?.getBoundingClientRect();
    const rest = this.restMap;
    if (m && rest && rest.vw === window.innerWidth && rest.vh === window.innerHeight && overlaps(m, rest.rect) &&
        rest.rect.width * rest.rect.height < m.width * m.height) m = rest.rect;
    else if (m) this.restMap = { rect: m, vw: window.innerWidth, vh: window.innerHeight };
    if (m && m.width > 0 && m.height > 0) {
      rects.push(m);
      const box = guessMap.parentElement?.getBoundingClientRect();
      // the map's own container, unless that is the whole layout
      if (box && box.width * box.height < 3 * m.width * m.height) rects.push(box);
      else rects.push({ left: m.left, right: m.right, top: m.bottom, bottom: m.bottom + 60 });   // the button below it
    }
    const status = statusBox(roundNumber);
    if (status) rects.push(status);
    this.keepOut = rects.map((r) => ({ left: r.left - KEEP_OUT_MARGIN, right: r.right + KEEP_OUT_MARGIN,
                                       top: r.top - KEEP_OUT_MARGIN, bottom: r.bottom + KEEP_OUT_MARGIN }));
    const p = this.panel.getBoundingClientRect();
    if (this.keepOut.some((k) => overlaps(p, k))) this.place({ left: p.left, top: p.top, collapsed: this.panel.classList.contains("collapsed") });
  }

  savePos() {
    const r = this.panel.getBoundingClientRect();
    LF.api.storage.local.set({ overlayPos: { left: r.left, top: r.top, collapsed: this.panel.classList.contains("collapsed") } });
  }

  setCollapsed(collapsed) {
    this.panel.classList.toggle("collapsed", collapsed);
    this.$("collapse").textContent = collapsed ? "+" : "–";
    this.updateMinimap();
    this.savePos();
  }

  makeDraggable() {
    const handle = this.$("handle");
    let start = null;
    handle.addEventListener("pointerdown", (e) => {
      if (e.target.closest("button")) return;
      const r = this.panel.getBoundingClientRect();
      start = { x: e.clientX, y: e.clientY, left: r.left, top: r.top };
      handle.setPointerCapture(e.pointerId);
    });
    handle.addEventListener("pointermove", (e) => {
      if (!start) return;
      this.place({ left: start.left + e.clientX - start.x, top: start.top + e.clientY - start.y,
                   collapsed: this.panel.classList.contains("collapsed") });
    });
    handle.addEventListener("pointerup", () => {
      if (start) this.savePos();
      start = null;
    });
  }

  setVisible(visible) {
    this.visible = visible;
    this.host.hidden = !visible;
    this.host.style.display = visible ? "" : "none";
  }

  setStatus(state, text) {
    this.$("light").dataset.state = state;
    this.$("light").title = text;
    const status = this.$("status");
    status.dataset.state = state;
    status.dataset.tone = ERROR_STATES.has(state) ? "error" : state === "off" ? "muted" : "";
    status.textContent = state === "connected" ? "" : text;
    this.$("open-options").hidden = !OPTIONS_STATES.has(state) && !this.hookNotice;
  }

  // ⟳ pressed: busy until the answer to the new view comes (or the wait times out).
  setBusy(busy) {
    const b = this.$("capture");
    if (busy) b.dataset.busy = "";
    else delete b.dataset.busy;
    b.setAttribute("aria-pressed", String(busy));
    b.title = busy ? "Asking the model…" : "Ask again now";
  }

  // The hook self-check's notice (LF.missingHooksText); empty: every hook was found.
  setHookNotice(text) {
    const el = this.$("hooks");
    el.textContent = text;
    el.hidden = !text;
    this.hookNotice = !!text;   // the options button shows with it (see setStatus)
    if (text) this.$("open-options").hidden = false;
  }

  clearPrediction(note) {
    this.last = null;
    this.$("countries").replaceChildren();
    this.$("verdict").hidden = true;
    this.$("regions").hidden = true;
    this.$("log").hidden = true;
    this.$("foot").textContent = note || "";
    delete this.host.dataset.lfRound;
    this.minimap.hidden = true;
  }

  // The verdict line and the countries: a bold winner only when the model is sure enough.
  renderCountries(countries, confidence, topK) {
    const verdict = this.$("verdict");
    verdict.dataset.level = confidence;
    verdict.textContent = LEVEL_TEXT[confidence] || "";
    verdict.hidden = !countries.length;
    const list = this.$("countries");
    list.className = confidence === "unsure" ? "unsure" : "sure";
    list.replaceChildren(...countries.slice(0, topK).map((c) => {
      const bar = h("i");
      bar.style.width = `${Math.max(1, c.p * 100)}%`;
      return h("li", { "data-lf": "country", "data-code": c.code },
        h("span", { class: "flag" }, LF.flagEmoji(c.code)), h("span", { class: "name" }, c.name),
        h("span", { class: "p" }, pctText(c.p)), h("span", { class: "bar" }, bar));
    }));
  }

  showPrediction(prediction, shapes, topK, captureMs) {
    this.last = { prediction, shapes };
    this.$("log").hidden = true;
    this.renderCountries(prediction.countries, prediction.confidence, topK);
    const regions = this.$("regions");
    regions.replaceChildren(...prediction.regions.slice(0, 3).map((r) =>
      h("div", { "data-lf": "region" }, h("span", {}, `${r.name}, ${r.country}`), h("span", {}, `${Math.round(r.p * 100)}%`))));
    regions.hidden = prediction.regions.length === 0;
    const frames = prediction.frames > 1 ? `${prediction.frames} views · ` : "";
    this.$("foot").textContent = `${frames}model ${Math.round(prediction.latency_ms)} ms · capture→overlay ${Math.round(captureMs)} ms`;
    this.host.dataset.lfCaptureMs = String(Math.round(captureMs));
    this.host.dataset.lfRound = prediction.round;
    this.drawMap(prediction, shapes);
  }

  // The result screen: no live answer, no mini-map; with "reveal after I guess", what the model said.
  showRoundOver(entry, reveal) {
    this.clearPrediction(entry ? "" : "Round over.");
    if (reveal && entry) {
      this.renderCountries(entry.countries, entry.confidence, entry.countries.length);
      this.$("verdict").textContent = `The model said: ${LEVEL_TEXT[entry.confidence].toLowerCase()}`;
    } else if (entry) {
      this.$("foot").textContent = `Round ${entry.round}: the model said ${entry.countries[0]?.name || "nothing"} (${entry.confidence}).`;
    }
  }

  // The summary screen: the round log, and a link that saves it as JSON.
  showLog(log) {
    this.clearPrediction("");
    const box = this.$("log");
    const rows = log.rounds.map((r) => h("tr", { "data-lf": "log-round" },
      h("td", {}, r.round), h("td", {}, r.countries.slice(0, 3).map((c) => `${c.name} ${pctText(c.p)}`).join(", ")),
      h("td", {}, r.confidence)));
    if (this.exportUrl) URL.revokeObjectURL(this.exportUrl);
    this.exportUrl = URL.createObjectURL(new Blob([JSON.stringify(log, null, 1)], { type: "application/json" }));
    const link = h("a", { "data-lf": "export", href: this.exportUrl, download: `lost-and-found-${log.started.slice(0, 19).replace(/:/g, "-")}.json` },
      "Save the round log (JSON)");
    box.replaceChildren(h("div", { class: "verdict" }, rows.length ? "What the model said this game" : "No answers this game"),
      h("table", {}, ...rows), link);
    box.hidden = false;
  }

  // The cell outlines arrived after the answer (first answer of a session): draw them in.
  setShapes(frame, shapes) {
    if (!this.last || this.last.prediction.frame !== frame) return;
    this.last.shapes = shapes;
    this.drawMap(this.last.prediction, shapes);
  }

  hideMinimap() {
    this.minimap.hidden = true;
  }

  // Beside the guess map (to its left, bottom-aligned), or under the panel when there is no guess map.
  updateMinimap(guessMap) {
    if (this.minimap.hidden) return;
    const collapsed = this.panel.classList.contains("collapsed");
    const width = this.minimap.offsetWidth, height = this.minimap.offsetHeight;
    const m = guessMap?.getBoundingClientRect();
    let left, top;
    if (m && m.width > 0 && m.left > width + 10) {
      left = m.left - width - 10;
      top = Math.max(0, m.bottom - height);
    } else {
      const p = this.panel.getBoundingClientRect();
      left = p.left;
      top = p.bottom + 8;
    }
    this.minimap.style.left = `${left}px`;
    this.minimap.style.top = `${top}px`;
    this.minimap.style.visibility = collapsed ? "hidden" : "";
  }

  // The view: the first country's likely cells and the pin, with the next countries of the list (those within a
  // quarter of the first) where they fit in a regional view; the whole world when the first country alone is
  // spread that wide. A world inset shows where the rest of the mass is when the view holds less than 60% of it.
  drawMap(prediction, shapes) {
    const canvas = this.minimap.querySelector("canvas");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    const { lat: plat, lng: plng } = prediction.point;
    const top = prediction.countries[0]?.p || 0;
    const maxP = Math.max(...prediction.cells.map((c) => c.p), 1e-9);
    const bbox = (pts) => pts.reduce(([x0, x1, y0, y1], [x, y]) => [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)],
      [Infinity, -Infinity, Infinity, -Infinity]);
    const pointsOf = (code) => prediction.cells.filter((c) => shapes[c.id]?.country === code && c.p >= 0.05 * maxP)
      .flatMap((c) => shapes[c.id].rings.flat());
    let pts = [[plng, plat], ...pointsOf(prediction.countries[0]?.code)];
    for (const c of prediction.countries.slice(1, 3).filter((c) => c.p >= top / 4)) {
      const more = [...pts, ...pointsOf(c.code)];
      const [a, b, cc, d] = bbox(more);
      if (b - a <= 90 && d - cc <= 60) pts = more;
    }
    const [x0, x1, y0, y1] = bbox(pts);
    let w = Math.max(20, (x1 - x0) * 1.3), hh = Math.max((y1 - y0) * 1.3, (w * H) / W);
    w = Math.max(w, (hh * W) / H);
    const world = w > 160;
    if (world) { w = 360; hh = (w * H) / W; }
    const view = {
      w, h: hh,
      cx: Math.min(180 - w / 2, Math.max(-180 + w / 2, world ? 0 : (x0 + x1) / 2)),
      cy: Math.min(90 - hh / 2, Math.max(-90 + hh / 2, world ? 10 : (y0 + y1) / 2)),
    };
    const inView = (lng, lat) => Math.abs(lng - view.cx) <= view.w / 2 && Math.abs(lat - view.cy) <= view.h / 2;
    const total = prediction.cells.reduce((a, c) => a + c.p, 0) || 1;
    const seen = prediction.cells.reduce((a, c) => {
      const ring = shapes[c.id]?.rings?.[0];
      return a + (ring && inView(ring[0][0], ring[0][1]) ? c.p : 0);
    }, 0);
    this.paint(ctx, { x: 0, y: 0, W, H }, view, prediction, shapes, maxP, true);
    const spread = !world && seen / total < 0.6;
    if (spread) {
      const box = { x: W - 186, y: H - 98, W: 180, H: 92 };
      const worldView = { w: 360, h: 184, cx: 0, cy: 0 };
      ctx.save();
      ctx.fillStyle = LF.PALETTE.bg;
      ctx.fillRect(box.x - 2, box.y - 2, box.W + 4, box.H + 4);
      this.paint(ctx, box, worldView, prediction, shapes, maxP, false);
      const px = this.projector(box, worldView);   // the main view's outline on the inset
      const [ax, ay] = px(view.cx - view.w / 2, view.cy + view.h / 2), [bx, by] = px(view.cx + view.w / 2, view.cy - view.h / 2);
      ctx.strokeStyle = LF.PALETTE.text;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(ax, ay, bx - ax, by - ay);
      ctx.restore();
    }
    this.minimap.dataset.view = world ? "world" : "region";
    this.minimap.dataset.inset = spread ? "1" : "0";
    this.minimap.hidden = false;
  }

  projector(box, view) {
    return (lng, lat) => [box.x + ((lng - (view.cx - view.w / 2)) / view.w) * box.W,
                          box.y + ((view.cy + view.h / 2 - lat) / view.h) * box.H];
  }

  paint(ctx, box, view, prediction, shapes, maxP, withPin) {
    const px = this.projector(box, view);
    const path = (ring) => {
      ctx.beginPath();
      ring.forEach(([lng, lat], i) => { const [x, y] = px(lng, lat); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.closePath();
    };
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.x, box.y, box.W, box.H);
    ctx.clip();
    ctx.fillStyle = "#20262f";   // sea
    ctx.fillRect(box.x, box.y, box.W, box.H);
    ctx.fillStyle = "#3a414c";   // land
    ctx.strokeStyle = "#555d69";
    ctx.lineWidth = 1;
    for (const c of this.world?.countries || []) for (const poly of c.polygons) { path(poly[0]); ctx.fill(); ctx.stroke(); }
    for (const c of prediction.cells) {
      const alpha = 0.2 + 0.65 * (c.p / maxP);
      for (const ring of shapes[c.id]?.rings || []) {
        path(ring);
        ctx.fillStyle = `rgba(245, 166, 35, ${alpha.toFixed(3)})`;
        ctx.fill();
        ctx.strokeStyle = "rgba(245, 166, 35, 0.9)";
        ctx.stroke();
      }
    }
    if (withPin) {
      const [x, y] = px(prediction.point.lng, prediction.point.lat);
      ctx.fillStyle = LF.PALETTE.accent;
      ctx.strokeStyle = LF.PALETTE.bg;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.arc(x, y - 18, 9, Math.PI * 0.8, Math.PI * 2.2);
      ctx.closePath();
      ctx.stroke();
      ctx.fill();
      ctx.fillStyle = LF.PALETTE.bg;
      ctx.beginPath();
      ctx.arc(x, y - 18, 3.4, 0, Math.PI * 2);
      ctx.fill();
      // the pin's label, on the side with room
      ctx.font = "600 22px system-ui, sans-serif";
      const label = "model's pin";
      const tw = ctx.measureText(label).width;
      const lx = x + 14 + tw < box.x + box.W ? x + 14 : x - 14 - tw, ly = Math.max(box.y + 22, y - 12);
      ctx.lineWidth = 4;
      ctx.strokeText(label, lx, ly);
      ctx.fillStyle = LF.PALETTE.text;
      ctx.fillText(label, lx, ly);
    }
    ctx.restore();
  }
};
