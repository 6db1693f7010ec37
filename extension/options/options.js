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

function fill(s) {
  $("companionUrl").value = s.companionUrl;
  $("token").value = s.token;
  $("overlay").checked = s.overlay;
  $("autoCapture").checked = s.autoCapture;
  $("topK").value = s.topK;
  $("captureMode").value = s.captureMode;
  for (const k of SELECTOR_KEYS) $(`sel-${k}`).value = (s.selectors[k] || []).join("\n");
  checkSelectors();
}

function read() {
  const selectors = {};
  for (const k of SELECTOR_KEYS) selectors[k] = selectorLines(k);
  return {
    companionUrl: $("companionUrl").value.trim(),
    token: $("token").value.trim(),
    overlay: $("overlay").checked,
    autoCapture: $("autoCapture").checked,
    topK: Number($("topK").value),
    captureMode: $("captureMode").value,
    selectors,
  };
}

async function checkConnection(s) {
  const out = $("connection");
  try {
    const url = new URL(s.companionUrl);
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("not a websocket URL");
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    const r = await fetch(`${url.origin}/v1/health`, { signal: AbortSignal.timeout(2000) });
    const health = await r.json();
    out.textContent = `Companion running, model ${health.model}.`;
    out.dataset.state = "ok";
  } catch (e) {
    out.textContent = e.message === "not a websocket URL" ? "The URL must start with ws:// or wss://."
      : "The companion is not running at this URL.";
    out.dataset.state = "bad";
  }
}

$("options").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!checkSelectors()) {
    $("saved").textContent = "Not saved: a selector is not valid (see Selectors).";
    return;
  }
  const s = read();
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

(async () => {
  const s = await LF.loadSettings();
  fill(s);
  checkConnection(s);
  $("screenshots").checked = await api.permissions.contains(SCREENSHOT_PERMISSION);
  const commands = await api.commands?.getAll?.();
  const toggle = commands?.find((c) => c.name === "toggle-overlay");
  if (toggle) $("hotkey").textContent = toggle.shortcut || "not set";
})();
