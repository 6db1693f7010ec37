// Fair play: which kind of game a page is, and whether the player lets the assistant help in it. Competitive
// modes (other players against you) are off until the player turns them on in the options. Detected from the
// URL and the page's layout only (../shared/reference/geoguessr-dom.md), never from the game's data.
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

LF.MODES = [
  { key: "classic", label: "Classic single player", on: true, paths: [/^\/game\//] },
  { key: "challenge", label: "Challenge links (played alone, scores compared later)", on: true, paths: [/^\/challenge\//] },
  { key: "duels", label: "Duels and team duels", on: false,
    paths: [/^\/duels\//, /^\/team-duels\//, /^\/multiplayer\/(team-)?duels?\//] },
  { key: "battle-royale", label: "Battle royale", on: false, paths: [/^\/battle-royale\//, /^\/multiplayer\/battle-royale\//] },
  { key: "ranked", label: "Ranked and competitive", on: false, paths: [/^\/competitive\//, /^\/ranked/, /^\/multiplayer\/(ranked|competitive)/] },
  { key: "live-challenge", label: "Live challenge", on: false, paths: [/^\/live-challenge\//] },
  { key: "party", label: "Party games (bullseye, party lobbies)", on: false, paths: [/^\/party\//, /^\/bullseye\//] },
  { key: "other", label: "Other pages with a street view", on: true, paths: [] },
];

// Layouts of the multiplayer games, for pages whose URL says nothing (the 2026 duels moved under /multiplayer/).
const MODE_HINTS = [
  ["duels", ['[class*="health-bar"]', '[class*="duels-"]', '[data-qa="duels-hud"]']],
  ["battle-royale", ['[class*="battle-royale"]', '[data-qa="spectating"]']],
];

LF.detectMode = function detectMode(path = location.pathname, doc = document) {
  for (const m of LF.MODES) if (m.paths.some((re) => re.test(path))) return m.key;
  for (const [key, selectors] of MODE_HINTS) if (selectors.some((s) => doc.querySelector(s))) return key;
  return "other";
};

LF.modeLabel = (key) => LF.MODES.find((m) => m.key === key)?.label || key;

// The player's switch for this mode, else its default.
LF.modeEnabled = function modeEnabled(settings, key) {
  const chosen = settings.modes?.[key];
  return typeof chosen === "boolean" ? chosen : !!LF.MODES.find((m) => m.key === key)?.on;
};
