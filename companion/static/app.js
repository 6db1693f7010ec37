// Lost & Found companion web UI: Predict (drop/paste an image) and Play (the human baseline).
// Plain JavaScript, no CDN: the world outline and the model's cells come from this server.
"use strict";

// The server hands the token only to a page opened with it (/?token=..., the URL `serve` prints);
// the page keeps it in this origin's storage for later visits and drops it from the address bar.
const TOKEN = (() => {
  const given = document.querySelector('meta[name="lf-token"]').content;
  try {
    if (given) localStorage.setItem("lf-token", given);
    else return localStorage.getItem("lf-token") || "";
  } catch { /* storage off: this visit only */ }
  return given;
})();
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname + location.hash);
const $ = (id) => document.getElementById(id);
const pct = (p) => (100 * p).toFixed(1) + "%";
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
// the product's palette (style.css's :root, and the extension's overlay)
const COLORS = { sea: "#181d24", land: "#303641", border: "#474f5c", cell: "245,166,35", pin: "#f5a623",
  truth: "#3ecf8e", player: "76,154,255", outline: "#14171c" };
const state = { world: null, cells: null, names: {}, round: null };

async function api(path, options = {}) {
  const headers = Object.assign({ "X-LF-Token": TOKEN }, options.headers || {});
  const res = await fetch(path, Object.assign({}, options, { headers }));
  const body = await res.json().catch(() => ({ message: res.statusText }));
  if (!res.ok) throw Object.assign(new Error(body.message || res.statusText), { body });
  return body;
}

// ---- map (equirectangular) ----
function project(canvas, lng, lat) {
  return [((lng + 180) / 360) * canvas.width, ((90 - lat) / 180) * canvas.height];
}

function tracePolygon(ctx, canvas, rings) {
  for (const ring of rings) {
    ring.forEach(([lng, lat], i) => {
      const [x, y] = project(canvas, lng, lat);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.closePath();
  }
}

function geometryPolygons(geom) {
  if (!geom) return [];
  if (geom.type === "Polygon") return [geom.coordinates];
  if (geom.type === "MultiPolygon") return geom.coordinates;
  return [];
}

// Draws the world, then (each optional) the model's cells (amber by probability), the countries the player
// guessed (blue outlines, the first filled), the model's point (amber pin) and the true location (green pin).
function drawMap(canvas, { cells = [], point = null, truth = null, player = [] } = {}) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = COLORS.sea;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "rgba(255,255,255,0.06)";
  ctx.lineWidth = 1;   // the context keeps the last draw's width: the graticule would thin after one map
  for (let lng = -150; lng < 180; lng += 30) { const [x] = project(canvas, lng, 0); ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height); ctx.stroke(); }
  for (let lat = -60; lat < 90; lat += 30) { const [, y] = project(canvas, 0, lat); ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(canvas.width, y); ctx.stroke(); }
  if (state.world) {
    ctx.fillStyle = COLORS.land;
    ctx.strokeStyle = COLORS.border;
    ctx.lineWidth = 0.6;
    for (const c of state.world.countries) {
      for (const poly of c.polygons) {
        ctx.beginPath();
        tracePolygon(ctx, canvas, poly);
        ctx.fill("evenodd");
        ctx.stroke();
      }
    }
  }
  if (cells.length && state.cells) {
    const pmax = Math.max(...cells.map((c) => c.p));
    for (const c of cells) {
      const feature = state.cells.get(c.id);
      if (!feature) continue;
      const rel = c.p / pmax;
      if (rel < 0.005) continue;  // a shaded cell should mean a plausible one
      const a = 0.15 + 0.75 * Math.sqrt(rel);
      ctx.fillStyle = `rgba(${COLORS.cell},${a.toFixed(3)})`;
      ctx.strokeStyle = `rgba(${COLORS.cell},0.6)`;
      ctx.lineWidth = 0.6;
      for (const poly of geometryPolygons(feature.geometry)) {
        ctx.beginPath();
        tracePolygon(ctx, canvas, poly);
        ctx.fill("evenodd");
        ctx.stroke();
      }
    }
  }
  // over the cells, so the player's answer stays readable where the model agrees
  if (player.length && state.world) {
    const byCode = new Map(state.world.countries.map((c) => [c.code, c]));
    player.forEach((code, i) => {
      ctx.fillStyle = `rgba(${COLORS.player},${i === 0 ? 0.3 : 0})`;
      ctx.strokeStyle = `rgba(${COLORS.player},0.95)`;
      ctx.lineWidth = i === 0 ? 2 : 1.2;
      for (const poly of (byCode.get(code) || { polygons: [] }).polygons) {
        ctx.beginPath();
        tracePolygon(ctx, canvas, poly);
        ctx.fill("evenodd");
        ctx.stroke();
      }
    });
  }
  const pin = (p, color) => {
    const [x, y] = project(canvas, p.lng, p.lat);
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = COLORS.outline;
    ctx.stroke();
  };
  if (point) pin(point, COLORS.pin);
  if (truth) pin(truth, COLORS.truth);
}

// ---- Predict ----
// the overlay's words for the reply's `confidence` (of the top country, from its calibrated p)
const LEVEL_TEXT = { confident: "Confident", likely: "Likely", unsure: "Not sure — top guesses" };

function bars(list, items, label) {
  list.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = pct(it.p);
    const name = document.createElement("span");
    name.textContent = label(it);
    const p = document.createElement("span");
    p.textContent = pct(it.p);
    li.append(bar, name, p);
    return li;
  }));
}

async function predict(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("status", "That is not an image.", true);
    return;
  }
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  $("drop-hint").hidden = true;
  setStatus("status", "Thinking…");
  try {
    const pred = await api("/v1/predict", { method: "POST", body: file, headers: { "Content-Type": file.type } });
    $("verdict").textContent = LEVEL_TEXT[pred.confidence] || "";
    $("verdict").dataset.level = pred.confidence || "";
    $("countries").className = `bars ${pred.confidence === "unsure" ? "unsure" : "sure"}`;
    bars($("countries"), pred.countries, (c) => `${c.name} (${c.code})`);
    bars($("regions"), pred.regions, (r) => `${r.name}, ${r.country}`);
    $("point").textContent = `Point: ${pred.point.lat.toFixed(3)}, ${pred.point.lng.toFixed(3)}`;
    $("results").hidden = false;
    setStatus("status", `${pred.latency_ms.toFixed(0)} ms · ${pred.model}`);
    drawMap($("map"), { cells: pred.cells, point: pred.point });
  } catch (e) {
    setStatus("status", "Error: " + e.message, true);
  }
}

function setStatus(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

// ---- Play ----
async function newRound() {
  try {
    const r = await api("/v1/play/round", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ player: $("player").value || "player" }) });
    state.round = r.round;
    $("play-image").src = r.image;
    $("play-image").hidden = false;
    $("guess-form").hidden = false;
    $("play-result").hidden = true;
    $("play-legend").hidden = true;
    $("play-left").textContent = `${r.remaining} of ${plural(r.total, "image")} left`;
    for (const input of $("guess-inputs").querySelectorAll("input")) { input.value = ""; markInvalid(input, false); }
    $("guess-inputs").querySelector("input").focus();
    setStatus("play-status", "");
    drawMap($("play-map"));
  } catch (e) {
    setStatus("play-status", "Error: " + e.message, true);
  }
}

function answerList(list, items) {
  list.replaceChildren(...items.map((g) => {
    const li = document.createElement("li");
    li.textContent = g.name;
    if (g.correct) li.className = "correct";
    return li;
  }));
}

function markInvalid(input, bad) {
  input.classList.toggle("invalid", bad);
  if (bad) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

async function submitGuess(ev) {
  ev.preventDefault();
  const all = [...$("guess-inputs").querySelectorAll("input")];
  all.forEach((i) => markInvalid(i, false));
  const inputs = all.filter((i) => i.value.trim());
  const guesses = inputs.map((i) => i.value.trim());
  if (!guesses.length) { setStatus("play-status", "Type at least one country.", true); return; }
  try {
    const r = await api("/v1/play/guess", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ round: state.round, guesses }) });
    $("truth").textContent = `It was ${r.truth.name} (${r.truth.lat.toFixed(2)}, ${r.truth.lng.toFixed(2)}).`;
    answerList($("human-answer"), r.guesses);
    answerList($("model-answer"), r.model);
    const row = (who, s) => `<tr><td>${who}</td><td>${pct(s.top1)}</td><td>${pct(s.top3)}</td><td>${pct(s.top5)}</td></tr>`;
    $("scoreboard").tBodies[0].innerHTML = row("you", r.score.human) + row("model", r.score.model);
    $("play-result").hidden = false;
    $("play-legend").hidden = false;
    $("guess-form").hidden = true;
    setStatus("play-status", `${plural(r.score.rounds, "round")} played`);
    drawMap($("play-map"), { truth: { lat: r.truth.lat, lng: r.truth.lng }, point: r.model_point, cells: r.model_cells,
      player: r.guesses.map((g) => g.code) });
  } catch (e) {
    // the entries stay as typed; the ones the server named are marked, the first focused for a fix
    const bad = (e.body && e.body.entries) || [];
    bad.forEach((k) => inputs[k] && markInvalid(inputs[k], true));
    if (bad.length && inputs[bad[0]]) inputs[bad[0]].focus();
    setStatus("play-status", "Error: " + e.message, true);
  }
}

function showTab() {
  const play = location.hash === "#play";
  $("predict").hidden = play;
  $("play").hidden = !play;
  $("tab-predict").classList.toggle("active", !play);
  $("tab-play").classList.toggle("active", play);
}

async function init() {
  $("token").textContent = TOKEN || "not paired: open the web UI URL that `python -m companion serve` prints";
  $("copy-token").onclick = () => navigator.clipboard && navigator.clipboard.writeText(TOKEN);
  window.addEventListener("hashchange", showTab);
  showTab();

  const drop = $("drop");
  $("file").onchange = () => predict($("file").files[0]);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); predict(e.dataTransfer.files[0]); });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (item) predict(item.getAsFile());
  });

  for (let i = 0; i < 5; i++) {
    const li = document.createElement("li");
    const input = document.createElement("input");
    input.setAttribute("list", "country-list");
    input.name = `guess${i + 1}`;
    input.autocomplete = "off";
    li.append(input);
    $("guess-inputs").append(li);
  }
  $("new-round").onclick = newRound;
  $("guess-form").onsubmit = submitGuess;

  const [world, model, countries] = await Promise.all([
    fetch("/static/world.json").then((r) => r.json()),
    fetch("/v1/model").then((r) => r.json()),
    fetch("/v1/play/countries").then((r) => (r.ok ? r.json() : [])),
  ]);
  state.world = world;
  state.cells = new Map(model.cells.features.map((f) => [f.properties.id, f]));
  $("model").textContent = `model ${model.model} · ${model.cells.features.length} cells`;
  $("country-list").replaceChildren(...countries.map((c) => {
    const o = document.createElement("option");
    o.value = c.name;
    o.label = c.code;
    return o;
  }));
  drawMap($("map"));
  drawMap($("play-map"));
  document.body.dataset.ready = "1";
}

init().catch((e) => setStatus("status", "Error: " + e.message, true));
