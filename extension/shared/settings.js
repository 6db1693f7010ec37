// Settings, their defaults and the selectors that find the game's parts. Loaded by the background, the
// content scripts and the options page (plain script, no modules: content scripts cannot import).
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});
LF.api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;

// Selectors, tried in order: the game's `data-qa` hooks first (they survived every redesign since 2023),
// then Google's street-view canvas class, then CSS-module classes by prefix only: ".name__*" matches a class
// beginning with "name__" (the site appends a hash that changes on every deploy, so never write the hash).
// The hooks are those maintained GeoGuessr tools rely on (docs: ../shared/reference/geoguessr-dom.md).
LF.DEFAULT_SELECTORS = {
  panorama: ['[data-qa="panorama"]', "canvas.widget-scene-canvas", ".game-panorama_panorama__*", ".game_canvas__*"],
  roundNumber: ['[data-qa="round-number"]'],
  guessMap: ['[data-qa="guess-map"]', ".guess-map_guessMap__*", ".game_guessMap__*"],
  compass: ['[data-qa="compass"]'],
  results: ['[data-qa="result-view-top"]', '[data-qa="result-view-bottom"]', ".result-layout_root__*"],
};

// What the overlay and the options page call each hook.
LF.HOOK_LABELS = {
  panorama: "Panorama", roundNumber: "Round counter", guessMap: "Guess map", compass: "Compass",
  results: "Results screen",
};

LF.DEFAULTS = {
  companionUrl: `ws://${LF.PROTOCOL.DEFAULT_HOST}:${LF.PROTOCOL.DEFAULT_PORT}/ws`,
  token: "",
  overlay: true,
  autoCapture: true,
  topK: LF.PROTOCOL.DEFAULT_TOP_K,
  captureMode: "auto",   // "auto": read the canvas, fall back to a tab screenshot; "canvas"; "tab"
  modes: {},             // fair play: mode → on/off, where the player chose (LF.modeEnabled has the defaults)
  revealAfterGuess: false,   // keep the answer hidden until the round's result screen
  selectors: LF.DEFAULT_SELECTORS,
};

// Earlier versions' defaults: their options page stored every selector, so a profile saved then holds these
// lists as if the player had chosen them. They are not overrides; the current defaults replace them.
LF.PAST_DEFAULT_SELECTORS = {
  panorama: [['[data-qa="panorama"]', ".game_panorama__*", ".game-panorama_panorama__*", ".game_canvas__*"]],
  roundNumber: [['[data-qa="round-number"]', ".status_inner__*", ".game-status_roundNumber__*"]],
  guessMap: [['[data-qa="guess-map"]', ".guess-map_canvasContainer__*", ".guess-map_canvas__*"]],
  compass: [['[data-qa="compass"]', ".panorama-compass_compassContainer__*", ".compass_compass__*"]],
};

// Stored selectors are the player's overrides only, so that a newer version's defaults reach every hook the
// player did not change; a hook whose override is empty, or a past default, takes the default.
LF.selectorOverrides = function selectorOverrides(selectors) {
  const overrides = {};
  for (const [k, list] of Object.entries(selectors || {})) {
    const clean = Array.isArray(list) ? list.map((s) => String(s).trim()).filter(Boolean) : [];
    const def = LF.DEFAULT_SELECTORS[k];
    const defaults = [def, ...(LF.PAST_DEFAULT_SELECTORS[k] || [])].filter(Boolean).map((d) => d.join("\n"));
    if (def && clean.length && !defaults.includes(clean.join("\n"))) overrides[k] = clean;
  }
  return overrides;
};

LF.loadSettings = async function loadSettings() {
  const { settings } = await LF.api.storage.local.get("settings");
  const merged = { ...LF.DEFAULTS, ...(settings || {}) };
  merged.selectors = { ...LF.DEFAULT_SELECTORS, ...LF.selectorOverrides(merged.selectors) };
  merged.topK = Math.min(10, Math.max(1, Math.round(Number(merged.topK) || LF.DEFAULTS.topK)));
  return merged;
};

LF.saveSettings = async function saveSettings(patch) {
  const next = { ...(await LF.loadSettings()), ...patch };
  next.selectors = LF.selectorOverrides(next.selectors);
  await LF.api.storage.local.set({ settings: next });
};

// What the panel says for each state (the panel adds a button that opens the options where that is the fix).
LF.STATUS_TEXT = {
  connecting: "Connecting to the companion…",
  connected: "Connected",
  not_running: "Companion not running. Start it in a terminal: python -m companion serve",
  wrong_token: "Wrong token: copy the pairing token that the companion printed into the options.",
  no_token: "No token yet: paste the pairing token that the companion printed into the options.",
  refused: "The companion refused the connection: check its URL in the options.",
  bad_url: "The companion URL in the options is not a ws:// or wss:// URL.",
  no_panorama: "Panorama not found: the page may have changed. Check the selectors in the options.",
  waiting: "Waiting for the panorama to render…",
  asking: "Asking the model…",
  timeout: "No answer from the companion yet: it may be busy or stuck. Press ⟳ to ask again.",
  unreadable: "The panorama cannot be read: allow screenshots of the game tab in the options.",
};
