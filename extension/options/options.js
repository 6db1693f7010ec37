"use strict";

const api = LF.api;
const $ = (id) => document.getElementById(id);
const SELECTOR_KEYS = Object.keys(LF.DEFAULT_SELECTORS);

// One box per hook, its default as the placeholder, and a line for what is wrong with it.
for (const k of SELECTOR_KEYS) {
  const label = document.createElement("label");
  const box = document.createElement("textarea");
  box.id = `sel-${k}`;
  box.rows = Math.max(2, LF.DEFAULT_SELECTORS[k].length);
  box.placeholder = LF.DEFAULT_SELECTORS[k].join("\n");
  box.spellcheck = false;
  const error = document.createElement("span");
  error.className = "selector-error";
  error.id = `sel-${k}-error`;
  label.append(`${LF.HOOK_LABELS[k] || k} `, box, error);
  $("selectorFields").append(label);
}

const selectorLines = (k) => $(`sel-${k}`).value.split("\n").map((l) => l.trim()).filter(Boolean);

// The first line of a hook's box that is not a CSS selector, as a message; "" when all are.
function selectorError(k) {
  for (const line of selectorLines(k)) {
    try {
      document.createDocumentFragment().querySelector(LF.expandSelector(line));
    } catch {
      return `"${line}" is not a CSS selector`;
    }
  }
  return "";
}

function checkSelectors() {
  let ok = true;
  for (const k of SELECTOR_KEYS) {
    const message = selectorError(k);
    $(`sel-${k}-error`).textContent = message;
    $(`sel-${k}`).setAttribute("aria-invalid", String(!!message));
    ok &&= !message;
  }
  return ok;
}

// What the companion prints is "… (token: X) …" and "web UI: http://…/?token=X": a pasted line, or a
// part of one, is reduced to the token itself.
function tokenFrom(text) {
  const t = text.trim();
  const m = t.match(/\(token:\s*([^\s)]+)\)/) || t.match(/[?&]token=([^&\s#]+)/) || t.match(/^token:\s*(\S+)$/i);
  return m ? decodeURIComponent(m[1]) : t;
}

function fillModes(s) {
  $("modes").replaceChildren(...LF.MODES.map((m) => {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `mode-${m.key}`;
    box.dataset.mode = m.key;
    box.checked = LF.modeEnabled(s, m.key);
    const label = document.createElement("label");
    label.className = "check";
    label.append(box, ` ${m.label}${m.on ? "" : " (competitive: off unless you turn it on)"}`);
    return label;
  }));
}

function fill(s) {
  $("companionUrl").value = s.companionUrl;
  $("token").value = s.token;
  $("overlay").checked = s.overlay;
  $("autoCapture").checked = s.autoCapture;
  $("topK").value = s.topK;
  $("captureMode").value = s.captureMode;
  $("revealAfterGuess").checked = !!s.revealAfterGuess;
  fillModes(s);
  for (const k of SELECTOR_KEYS) $(`sel-${k}`).value = (s.selectors[k] || []).join("\n");
  checkSelectors();
}

function read() {
  const selectors = {};
  for (const k of SELECTOR_KEYS) selectors[k] = selectorLines(k);
  const modes = {};
  for (const box of document.querySelectorAll("[data-mode]")) modes[box.dataset.mode] = box.checked;
  return {
    companionUrl: $("companionUrl").value.trim(),
    token: tokenFrom($("token").value),
    overlay: $("overlay").checked,
    autoCapture: $("autoCapture").checked,
    topK: Number($("topK").value),
    captureMode: $("captureMode").value,
    revealAfterGuess: $("revealAfterGuess").checked,
    modes,
    selectors,
  };
}

// Opens the websocket the extension uses, with this token: a wrong token is answered by an `unauthorized`
// error, a right one by the pong to our ping. Resolves "ok" | "wrong_token" | "refused".
function probeToken(wsUrl, token) {
  return new Promise((resolve) => {
    const probe = new URL(wsUrl);
    probe.searchParams.set("token", token);
    const ws = new WebSocket(probe.href);
    const done = (result) => {
      clearTimeout(timer);
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close();
      resolve(result);
    };
    const timer = setTimeout(() => done("refused"), 4000);
    ws.onopen = () => ws.send(JSON.stringify({ type: LF.PROTOCOL.MESSAGES.PING }));
    ws.onmessage = (e) => {
      let msg = {};
      try { msg = JSON.parse(e.data); } catch { /* not the companion */ }
      done(msg.type === LF.PROTOCOL.MESSAGES.PONG ? "ok" : msg.code === "unauthorized" ? "wrong_token" : "refused");
    };
    ws.onclose = (e) => done(e.code === LF.PROTOCOL.CLOSE_UNAUTHORIZED ? "wrong_token" : "refused");
  });
}

function say(text, state, wrong) {
  const out = $("connection");
  out.textContent = text;
  out.dataset.state = state;
  for (const id of ["companionUrl", "token"]) $(id).setAttribute("aria-invalid", String(wrong === id));
}

// Which is wrong, the URL or the token, with what to do about it.
async function checkConnection(s) {
  say("Testing…", "busy");
  let url;
  try {
    url = new URL(s.companionUrl);
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("scheme");
  } catch {
    return say(`The URL is wrong: it must start with ws:// or wss:// (the companion uses ${LF.DEFAULTS.companionUrl}).`, "bad", "companionUrl");
  }
  const ws = url.href;
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  let health;
  try {
    const r = await fetch(`${url.origin}/v1/health`, { signal: AbortSignal.timeout(2000) });
    health = await r.json();
  } catch {
    return say("The URL is wrong, or the companion is not running: nothing answers there. Start it with: python -m companion serve",
      "bad", "companionUrl");
  }
  if (!s.token) return say(`The companion runs (model ${health.model}), but the token is empty: paste the one it printed.`, "bad", "token");
  const result = await probeToken(ws, s.token);
  if (result === "ok") return say(`Connected: the URL and the token are right (model ${health.model}).`, "ok");
  if (result === "wrong_token") {
    return say("The URL is right, but the token is wrong: copy the token that the companion printed (token: …).", "bad", "token");
  }
  return say("The companion answers but refused the connection: is this URL the companion's websocket (…/ws)?", "bad", "companionUrl");
}

$("token").addEventListener("input", (e) => {
  const t = tokenFrom(e.target.value);
  if (t !== e.target.value) e.target.value = t;
});

$("test").addEventListener("click", () => checkConnection(read()));

$("options").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!checkSelectors()) {
    $("saved").textContent = "Not saved: a selector is not valid (see Selectors).";
    return;
  }
  const s = read();
  $("token").value = s.token;
  await LF.saveSettings(s);
  $("saved").textContent = "Saved.";
  setTimeout(() => { $("saved").textContent = ""; }, 2000);
  checkConnection(s);
});

// The screenshot fallback needs "<all_urls>" (or activeTab, which the hotkey grants for one tab): asked for
// only when the player opts in, so that installing the extension does not ask to read every site.
const SCREENSHOT_PERMISSION = { origins: ["<all_urls>"] };
$("screenshots").addEventListener("change", async (e) => {
  if (e.target.checked) e.target.checked = await api.permissions.request(SCREENSHOT_PERMISSION);
  else await api.permissions.remove(SCREENSHOT_PERMISSION);
});

$("resetSelectors").addEventListener("click", () => {
  for (const k of SELECTOR_KEYS) $(`sel-${k}`).value = LF.DEFAULT_SELECTORS[k].join("\n");
  checkSelectors();
});
$("selectorFields").addEventListener("input", checkSelectors);

// the hotkey's hide is kept in the settings: show it here as it changes
api.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes.settings?.newValue) $("overlay").checked = changes.settings.newValue.overlay !== false;
});

(async () => {
  const s = await LF.loadSettings();
  fill(s);
  checkConnection(s);
  $("screenshots").checked = await api.permissions.contains(SCREENSHOT_PERMISSION);
  const commands = await api.commands?.getAll?.();
  const toggle = commands?.find((c) => c.name === "toggle-overlay");
  if (toggle) $("hotkey").textContent = toggle.shortcut || "not set";
})();
