// The background: one websocket to the companion for all game tabs, the screenshot fallback, the hotkey.
// Chrome runs it as a service worker (websocket traffic keeps it alive since Chrome 116, and a ping every
// 20 s keeps traffic flowing); Firefox as an event page, with the shared scripts listed in the manifest.
"use strict";

if (typeof importScripts === "function" && !globalThis.LF?.encodeFrame) {
  importScripts("shared/constants.js", "shared/settings.js", "shared/protocol.js");
}

const api = LF.api;
const PING_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
const WRONG_TOKEN_RETRY_MS = 15000;
const CLOSE_UNAUTHORIZED = LF.PROTOCOL.CLOSE_UNAUTHORIZED;
const WIRE = LF.PROTOCOL.MESSAGES;   // message types on the websocket
const CAPTURE_INTERVAL_MS = 550;   // Chrome allows 2 captureVisibleTab calls per second

const state = {
  ws: null,
  status: "connecting",
  detail: "",
  attempt: 0,             // failed connections in a row, for the backoff
  connectCalls: 0,        // calls of connect() so far: the latest one wins
  retryTimer: null,
  pingTimer: null,
  pongTimer: null,
  nextFrame: 1,
  pending: new Map(),     // frame → { tabId, round, localFrame }
  lastFrame: new Map(),   // tabId → the last frame message, resent once a new connection opens
  tabs: new Set(),        // tabs whose content script is active on a game page
  cells: null,            // Promise of Map(cell id → { country, rings: outer rings }) for cellsModel, from GET /v1/model
  cellsLoaded: null,      // that Map, once loaded
  cellsModel: null,
  lastCapture: 0,
  captureQueue: Promise.resolve(),
};

function setStatus(status, detail = "") {
  if (state.status === status && state.detail === detail) return;
  state.status = status;
  state.detail = detail;
  broadcast({ type: LF.MSG.STATUS, status, detail });
}

function broadcast(msg) {
  for (const tabId of state.tabs) {
    api.tabs.sendMessage(tabId, msg).catch(() => state.tabs.delete(tabId));
  }
}

function clearTimers() {
  clearTimeout(state.retryTimer);
  clearInterval(state.pingTimer);
  clearTimeout(state.pongTimer);
  state.retryTimer = state.pingTimer = state.pongTimer = null;
}

async function probeHealth(url) {
  try {
    const r = await fetch(`${LF.httpBase(url)}/v1/health`, { signal: AbortSignal.timeout(1500) });
    return r.ok;
  } catch {
    return false;
  }
}

// Hello, a frame and a settings change can each call this while an earlier call still awaits the
// settings: only the latest call goes on, and it closes the previous socket first, so at most one socket
// (and one ping timer) exists.
async function connect() {
  const call = ++state.connectCalls;
  const settings = await LF.loadSettings();
  if (call !== state.connectCalls) return;   // a newer call took over
  clearTimers();
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.onclose = old.onerror = old.onmessage = old.onopen = null;
    old.close();
  }
  if (state.tabs.size === 0) return;   // nobody to serve: connect when a game tab asks
  if (!settings.token) return setStatus("no_token");
  let url;
  try {
    url = new URL(settings.companionUrl);
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("scheme");
  } catch {
    return setStatus("bad_url");
  }
  url.searchParams.set("token", settings.token);
  setStatus("connecting");
  const ws = new WebSocket(url.href);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  let opened = false;
  let unauthorized = false;

  ws.onopen = () => {
    opened = true;
    state.attempt = 0;
    setStatus("connected");
    state.pingTimer = setInterval(ping, PING_MS);
    // the companion forgot everything if it restarted: send each tab's latest frame again, and tell the tab,
    // whose latency readout then starts from now (the downtime is not the model's)
    for (const [tabId, msg] of state.lastFrame) {
      if (sendFrame(tabId, msg)) api.tabs.sendMessage(tabId, { type: LF.MSG.RESENT, round: msg.round, frame: msg.frame }).catch(() => {});
    }
  };
  ws.onmessage = (event) => onServerMessage(event.data, () => { unauthorized = true; });
  ws.onclose = async (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    clearTimers();
    state.pending.clear();
    if (unauthorized || event.code === CLOSE_UNAUTHORIZED) {
      setStatus("wrong_token");
      state.retryTimer = setTimeout(connect, WRONG_TOKEN_RETRY_MS);
      return;
    }
    if (!opened) {
      // A refused handshake and a closed port look the same to a websocket; ask over HTTP which it was.
      const up = await probeHealth(settings.companionUrl);
      if (call !== state.connectCalls) return;   // connect() was called meanwhile: no second retry
      setStatus(up ? "refused" : "not_running");
    } else {
      setStatus("not_running");
    }
    const delay = BACKOFF_MS[Math.min(state.attempt++, BACKOFF_MS.length - 1)];
    state.retryTimer = setTimeout(connect, delay);
  };
}

function ping() {
  if (state.ws?.readyState !== WebSocket.OPEN) return;
  state.ws.send(JSON.stringify({ type: WIRE.PING }));
  clearTimeout(state.pongTimer);
  state.pongTimer = setTimeout(() => state.ws?.close(), PONG_TIMEOUT_MS);   // silent companion: reconnect
}

function onServerMessage(data, markUnauthorized) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (msg.type === WIRE.PONG) {
    clearTimeout(state.pongTimer);
    return;
  }
  const target = state.pending.get(msg.frame);
  if (msg.frame != null) state.pending.delete(msg.frame);
  // a newer frame of the same round came before this one's turn: its answer is on the way, nothing to show
  if (msg.type === WIRE.SUPERSEDED) return;
  if (msg.type === WIRE.ERROR) {
    if (msg.code === "unauthorized") markUnauthorized();
    if (target) api.tabs.sendMessage(target.tabId, { type: LF.MSG.ERROR, code: msg.code, message: msg.message, round: target.round }).catch(() => {});
    return;
  }
  if (msg.type === WIRE.PREDICTION && target) {
    deliverPrediction(target, msg);
  }
}

// The answer goes out at once; the mini-map's cell outlines follow as soon as GET /v1/model is loaded
// (the first answer of a session must not wait for that download).
function deliverPrediction(target, prediction) {
  const ids = prediction.cells.map((c) => c.id);
  const loaded = state.cellsModel === prediction.model && state.cellsLoaded;
  api.tabs.sendMessage(target.tabId, {
    type: LF.MSG.PREDICTION,
    prediction: { ...prediction, frame: target.localFrame, round: target.round },
    shapes: loaded ? pickCells(state.cellsLoaded, ids) : null,
  }).catch(() => {});
  if (!loaded) {
    cellsFor(prediction.model).then((cells) => {
      const msg = { type: LF.MSG.SHAPES, round: target.round, frame: target.localFrame, shapes: pickCells(cells, ids) };
      api.tabs.sendMessage(target.tabId, msg).catch(() => {});
    });
  }
}

function pickCells(cells, ids) {
  const out = {};
  for (const id of ids) if (cells.has(id)) out[id] = cells.get(id);
  return out;
}

// The cells' outlines for the mini-map, from GET /v1/model: fetched once per model, concurrent callers
// share the one request, a failure is retried with the next answer.
function cellsFor(modelId) {
  if (state.cellsModel !== modelId || !state.cells) {
    state.cellsModel = modelId;
    state.cellsLoaded = null;
    state.cells = loadCells().then((cells) => {
      if (state.cellsModel === modelId) state.cellsLoaded = cells;
      return cells;
    }, () => {
      if (state.cellsModel === modelId) state.cells = null;
      return new Map();
    });
  }
  return state.cells;
}

async function loadCells() {
  const settings = await LF.loadSettings();
  const r = await fetch(`${LF.httpBase(settings.companionUrl)}/v1/model`, { signal: AbortSignal.timeout(60000) });
  if (!r.ok) throw new Error(`GET /v1/model: HTTP ${r.status}`);
  const model = await r.json();
  const cells = new Map();
  for (const f of model.cells?.features || []) {
    const g = f.geometry || {};
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    cells.set(f.properties.id, { country: f.properties.country, rings: polys.map((p) => p[0]) });
  }
  return cells;
}

function sendFrame(tabId, msg) {
  if (state.ws?.readyState !== WebSocket.OPEN) return false;
  const frame = state.nextFrame++;
  state.pending.set(frame, { tabId, round: msg.round, localFrame: msg.frame });
  const header = LF.frameHeader(msg.round, frame, msg.heading, msg.topK);
  state.ws.send(LF.encodeFrame(header, LF.base64ToBytes(msg.image)));
  return true;
}

// Fallback capture: a screenshot of the visible tab (the page hid its UI first), cropped to the panorama.
// Chrome allows 2 captureVisibleTab calls per second across all tabs, so the calls queue on one promise
// chain, each starting CAPTURE_INTERVAL_MS after the one before.
async function captureTab(tab, rect) {
  const shot = state.captureQueue.then(async () => {
    const wait = state.lastCapture + CAPTURE_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    state.lastCapture = Date.now();
    return api.tabs.captureVisibleTab(tab.windowId, { format: "jpeg", quality: 92 });
  });
  state.captureQueue = shot.catch(() => {});   // a failed capture must not stop the queue
  const dataUrl = await shot;
  const bitmap = await createImageBitmap(await (await fetch(dataUrl)).blob());
  const scale = bitmap.width / rect.viewportWidth;
  const sx = Math.max(0, Math.round(rect.x * scale)), sy = Math.max(0, Math.round(rect.y * scale));
  const sw = Math.min(bitmap.width - sx, Math.round(rect.width * scale));
  const sh = Math.min(bitmap.height - sy, Math.round(rect.height * scale));
  const out = new OffscreenCanvas(sw, sh);
  out.getContext("2d").drawImage(bitmap, sx, sy, sw, sh, 0, 0, sw, sh);
  const blob = await out.convertToBlob({ type: "image/jpeg", quality: 0.92 });
  return { image: await LF.blobToBase64(blob), width: sw, height: sh };
}

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  const tabId = sender.tab?.id;
  if (msg.type === LF.MSG.HELLO && tabId != null) {
    const first = state.tabs.size === 0;
    state.tabs.add(tabId);
    if (first || !state.ws) connect();
    sendResponse({ status: state.status, detail: state.detail });
    return false;
  }
  if (msg.type === LF.MSG.BYE && tabId != null) {
    state.tabs.delete(tabId);
    state.lastFrame.delete(tabId);
    return false;
  }
  if (msg.type === LF.MSG.FRAME && tabId != null) {
    state.tabs.add(tabId);
    state.lastFrame.set(tabId, msg);
    const sent = sendFrame(tabId, msg);
    if (!sent && !state.ws) connect();
    sendResponse({ sent, status: state.status });
    return false;
  }
  if (msg.type === LF.MSG.CAPTURE_TAB && sender.tab) {
    captureTab(sender.tab, msg.rect).then(sendResponse, (e) => sendResponse({ error: String(e?.message || e) }));
    return true;   // answered asynchronously
  }
  if (msg.type === LF.MSG.OPEN_OPTIONS) {
    api.runtime.openOptionsPage();
    return false;
  }
  return false;
});

api.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes.settings) {
    state.attempt = 0;
    connect();
  }
});

api.tabs.onRemoved.addListener((tabId) => {
  state.tabs.delete(tabId);
  state.lastFrame.delete(tabId);
});

async function toggleOverlay() {
  const [tab] = await api.tabs.query({ active: true, currentWindow: true });
  if (tab?.id != null) api.tabs.sendMessage(tab.id, { type: LF.MSG.TOGGLE_OVERLAY }).catch(() => {});
}

api.commands.onCommand.addListener((command) => {
  if (command === "toggle-overlay") toggleOverlay();
});

api.action.onClicked.addListener(() => api.runtime.openOptionsPage());

// for tests and debugging from the service worker console
globalThis.lfState = state;
globalThis.lfToggleOverlay = toggleOverlay;
