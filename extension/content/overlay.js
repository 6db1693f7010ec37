// The overlay: a small draggable, collapsible panel (status light, top countries with flags and bars,
// top regions, latency) and a mini-map beside the game's guess map (pin + shaded cells). It only shows;
// it never touches the game's map or guess button.
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

const OVERLAY_CSS = `
:host { all: initial; }
.panel { position: fixed; z-index: 2147483646; width: 260px; font: 12px/1.35 system-ui, sans-serif; color: #f4f4f8;
  background: rgba(18, 16, 40, 0.92); border: 1px solid rgba(255,255,255,0.18); border-radius: 10px;
  box-shadow: 0 6px 24px rgba(0,0,0,0.45); user-select: none; overflow: hidden; }
header { display: flex; align-items: center; gap: 6px; padding: 6px 8px; cursor: move; background: rgba(255,255,255,0.06); }
header b { flex: 1; font-size: 12px; letter-spacing: .02em; }
.light { width: 9px; height: 9px; border-radius: 50%; background: #f5b642; box-shadow: 0 0 6px currentColor; }
.light[data-state="connected"] { background: #4cd26b; }
.light[data-state="not_running"], .light[data-state="wrong_token"], .light[data-state="refused"],
.light[data-state="no_token"], .light[data-state="bad_url"], .light[data-state="no_panorama"],
.light[data-state="unreadable"] { background: #ff5a5a; }
header button { all: unset; cursor: pointer; width: 18px; text-align: center; border-radius: 4px; opacity: .8; }
header button:hover { background: rgba(255,255,255,0.15); opacity: 1; }
.body { padding: 6px 10px 8px; }
.panel.collapsed .body { display: none; }
.status { color: #ffd36b; margin: 2px 0 6px; }
.status:empty { display: none; }
.status[data-state="wrong_token"], .status[data-state="not_running"], .status[data-state="no_panorama"],
.status[data-state="refused"], .status[data-state="no_token"], .status[data-state="unreadable"] { color: #ff8a8a; }
ol { list-style: none; margin: 0; padding: 0; }
li { display: grid; grid-template-columns: 20px 1fr 38px; align-items: center; column-gap: 6px; margin: 3px 0; }
.flag { font-size: 15px; line-height: 1; }
.name { overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.p { text-align: right; font-variant-numeric: tabular-nums; }
.bar { grid-column: 2 / 4; height: 4px; border-radius: 2px; background: rgba(255,255,255,0.12); }
.bar i { display: block; height: 100%; border-radius: 2px; background: linear-gradient(90deg, #6cb928, #b7e36b); }
li:first-child .name { font-weight: 700; }
.regions { margin-top: 6px; padding-top: 5px; border-top: 1px solid rgba(255,255,255,0.12); color: #cfd0e6; }
.regions div { display: flex; justify-content: space-between; gap: 8px; }
.regions span:first-child { overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.foot { margin-top: 6px; color: #9a9cb8; font-size: 11px; font-variant-numeric: tabular-nums; }
.minimap { position: fixed; z-index: 2147483645; width: 300px; height: 160px; border-radius: 6px; overflow: hidden;
  border: 1px solid rgba(255,255,255,0.25); box-shadow: 0 4px 16px rgba(0,0,0,0.4); background: #a9cbe8; pointer-events: none; }
.minimap canvas { display: block; width: 100%; height: 100%; }
.minimap .label { position: absolute; left: 6px; top: 4px; font: 11px system-ui, sans-serif; color: #1a1446;
  background: rgba(255,255,255,0.7); border-radius: 3px; padding: 0 4px; }
[hidden] { display: none !important; }
`;

function distanceKm(lat1, lng1, lat2, lng2) {
  const r = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * r) / 2) ** 2 +
    Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(((lng2 - lng1) * r) / 2) ** 2;
  return 12742 * Math.asin(Math.min(1, Math.sqrt(a)));
}

// A DOM element from a tag, attributes and children (text or elements): no HTML strings, no injection.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

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
          h("button", { "data-lf": "capture", title: "Capture now" }, "⟳"),
          h("button", { "data-lf": "collapse", title: "Collapse" }, "–")),
        h("div", { class: "body" },
          h("div", { class: "status", "data-lf": "status" }),
          h("div", { class: "status", "data-lf": "hooks", hidden: "" }),
          h("ol", { "data-lf": "countries" }),
          h("div", { class: "regions", "data-lf": "regions", hidden: "" }),
          h("div", { class: "foot", "data-lf": "foot" }))),
      h("div", { class: "minimap", "data-lf": "minimap", hidden: "" },
        h("canvas", { width: "600", height: "320" }), h("div", { class: "label" }, "Lost & Found")),
    );
    this.$ = (name) => shadow.querySelector(`[data-lf="${name}"]`);
    this.panel = this.$("panel");
    this.minimap = this.$("minimap");
    this.visible = true;
    this.world = null;
    this.last = null;
    this.$("capture").addEventListener("click", onCaptureNow);
    this.$("collapse").addEventListener("click", () => this.setCollapsed(!this.panel.classList.contains("collapsed")));
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

  place({ left, top, collapsed }) {
    const maxLeft = Math.max(0, window.innerWidth - 80), maxTop = Math.max(0, window.innerHeight - 30);
    this.panel.style.left = `${Math.min(maxLeft, Math.max(0, left))}px`;
    this.panel.style.top = `${Math.min(maxTop, Math.max(0, top))}px`;
    this.panel.classList.toggle("collapsed", !!collapsed);
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
    status.textContent = state === "connected" ? "" : text;
  }

  // The hook self-check's notice (LF.missingHooksText); empty: every hook was found.
  setHookNotice(text) {
    const el = this.$("hooks");
    el.textContent = text;
    el.hidden = !text;
  }

  clearPrediction(note) {
    this.last = null;
    this.$("countries").replaceChildren();
    this.$("regions").hidden = true;
    this.$("foot").textContent = note || "";
    this.minimap.hidden = true;
  }

  showPrediction(prediction, shapes, topK, captureMs) {
    this.last = { prediction, shapes };
    const list = this.$("countries");
    list.replaceChildren(...prediction.countries.slice(0, topK).map((c) => {
      const pct = Math.round(c.p * 1000) / 10;
      const bar = h("i");
      bar.style.width = `${Math.max(1, c.p * 100)}%`;
      return h("li", { "data-lf": "country", "data-code": c.code },
        h("span", { class: "flag" }, LF.flagEmoji(c.code)), h("span", { class: "name" }, c.name),
        h("span", { class: "p" }, `${pct < 10 ? pct.toFixed(1) : Math.round(pct)}%`), h("span", { class: "bar" }, bar));
    }));
    const regions = this.$("regions");
    regions.replaceChildren(...prediction.regions.slice(0, 3).map((r) => {
      const div = document.createElement("div");
      div.dataset.lf = "region";
      const name = document.createElement("span");
      name.textContent = `${r.name}, ${r.country}`;
      const p = document.createElement("span");
      p.textContent = `${Math.round(r.p * 100)}%`;
      div.append(name, p);
      return div;
    }));
    regions.hidden = prediction.regions.length === 0;
    const frames = prediction.frames > 1 ? `${prediction.frames} views · ` : "";
    this.$("foot").textContent = `${frames}model ${Math.round(prediction.latency_ms)} ms · capture→overlay ${Math.round(captureMs)} ms`;
    this.host.dataset.lfCaptureMs = String(Math.round(captureMs));
    this.host.dataset.lfRound = prediction.round;
    this.drawMap(prediction, shapes);
  }

  // The cell outlines arrived after the answer (first answer of a session): draw them in.
  setShapes(frame, shapes) {
    if (!this.last || this.last.prediction.frame !== frame) return;
    this.last.shapes = shapes;
    this.drawMap(this.last.prediction, shapes);
  }

  // Beside the guess map (to its left, bottom-aligned), or under the panel when there is no guess map.
  updateMinimap(guessMap) {
    if (this.minimap.hidden) return;
    const collapsed = this.panel.classList.contains("collapsed");
    const m = guessMap?.getBoundingClientRect();
    let left, top;
    if (m && m.width > 0 && m.left > 320) {
      left = m.left - 310;
      top = Math.max(0, m.bottom - 160);
    } else {
      const p = this.panel.getBoundingClientRect();
      left = p.left;
      top = p.bottom + 8;
    }
    this.minimap.style.left = `${left}px`;
    this.minimap.style.top = `${top}px`;
    this.minimap.style.visibility = collapsed ? "hidden" : "";
  }

  drawMap(prediction, shapes) {
    const canvas = this.minimap.querySelector("canvas");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    // The view: the point and the likely cells around it (within 2,500 km), padded, at least 40° wide, in
    // the map's aspect. Likely cells elsewhere are still drawn when in view; zooming out to fit a second
    // continent would shrink every cell to a dot.
    const { lat: plat, lng: plng } = prediction.point;
    const pts = [[plng, plat]];
    const maxP = Math.max(...prediction.cells.map((c) => c.p), 1e-9);
    for (const c of prediction.cells) {
      if (c.p < 0.1 * maxP) continue;
      for (const ring of shapes[c.id] || []) {
        if (ring.length && distanceKm(plat, plng, ring[0][1], ring[0][0]) < 2500) pts.push(...ring);
      }
    }
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    let w = Math.max(40, (x1 - x0) * 1.4), h = Math.max((y1 - y0) * 1.4, (w * H) / W);
    w = Math.max(w, (h * W) / H);
    if (w > 360) { w = 360; h = (w * H) / W; }
    const cx = Math.min(180 - w / 2, Math.max(-180 + w / 2, (x0 + x1) / 2));
    const cy = Math.min(90 - h / 2, Math.max(-90 + h / 2, (y0 + y1) / 2));
    const px = (lng, lat) => [((lng - (cx - w / 2)) / w) * W, ((cy + h / 2 - lat) / h) * H];
    const path = (ring) => {
      ctx.beginPath();
      ring.forEach(([lng, lat], i) => { const [x, y] = px(lng, lat); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.closePath();
    };
    ctx.fillStyle = "#a9cbe8";
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#f2efe6";
    ctx.strokeStyle = "#b3ad9c";
    ctx.lineWidth = 1;
    for (const f of this.world || []) for (const ring of f.rings) { path(ring); ctx.fill(); ctx.stroke(); }
    for (const c of prediction.cells) {
      const alpha = 0.15 + 0.6 * (c.p / maxP);
      for (const ring of shapes[c.id] || []) {
        path(ring);
        ctx.fillStyle = `rgba(226, 40, 60, ${alpha.toFixed(3)})`;
        ctx.fill();
        ctx.strokeStyle = "rgba(150, 10, 30, 0.8)";
        ctx.stroke();
      }
    }
    const [x, y] = px(prediction.point.lng, prediction.point.lat);   // the pin
    ctx.fillStyle = "#1a1446";
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.arc(x, y - 16, 8, Math.PI * 0.8, Math.PI * 2.2);
    ctx.closePath();
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(x, y - 16, 3.2, 0, Math.PI * 2);
    ctx.fill();
    this.minimap.hidden = false;
  }
};
