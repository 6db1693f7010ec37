// Settings, their defaults and the selectors that find the game's parts. Loaded by the background, the
// content scripts and the options page (plain script, no modules: content scripts cannot import).
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});
LF.api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;

// Selectors: tried in order, data-qa first. ".name__*" matches a CSS-module class by prefix
// (the site appends a build hash, e.g. game_panorama__a1B2c), so a rebuild of the site does not break them.
LF.DEFAULT_SELECTORS = {
  panorama: ['[data-qa="panorama"]', ".game_panorama__*", ".game-panorama_panorama__*", ".game_canvas__*"],
  roundNumber: ['[data-qa="round-number"]', ".status_inner__*", ".game-status_roundNumber__*"],
  guessMap: ['[data-qa="guess-map"]', ".guess-map_canvasContainer__*", ".guess-map_canvas__*"],
  compass: ['[data-qa="compass"]', ".panorama-compass_compassContainer__*", ".compass_compass__*"],
};

LF.DEFAULTS = {
  companionUrl: "ws://127.0.0.1:8765/ws",
  token: "",
  overlay: true,
  autoCapture: true,
  topK: 5,
  captureMode: "auto",   // "auto": read the canvas, fall back to a tab screenshot; "canvas"; "tab"
  modes: {},             // fair play: mode → on/off, where the player chose (LF.modeEnabled has the defaults)
  revealAfterGuess: false,   // keep the answer hidden until the round's result screen
  selectors: LF.DEFAULT_SELECTORS,
};

LF.loadSettings = async function loadSettings() {
  const { settings } = await LF.api.storage.local.get("settings");
  const merged = { ...LF.DEFAULTS, ...(settings || {}) };
  merged.selectors = { ...LF.DEFAULT_SELECTORS, ...(merged.selectors || {}) };
  merged.topK = Math.min(10, Math.max(1, Math.round(Number(merged.topK) || LF.DEFAULTS.topK)));
  return merged;
};

LF.saveSettings = async function saveSettings(patch) {
  const current = await LF.loadSettings();
  await LF.api.storage.local.set({ settings: { ...current, ...patch } });
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
