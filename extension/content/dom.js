// Finding the game's parts: configurable selectors, data-qa first, CSS-module classes by prefix.
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

// ".game_panorama__*" → any element whose class list has a class starting with "game_panorama__"
LF.expandSelector = function expandSelector(selector) {
  return selector.replace(/\.([A-Za-z0-9_-]+)\*/g, (_, prefix) => `:is([class^="${prefix}"],[class*=" ${prefix}"])`);
};

LF.findFirst = function findFirst(selectors, root = document) {
  for (const s of selectors || []) {
    try {
      const el = root.querySelector(LF.expandSelector(s));
      if (el) return el;
    } catch {
      // a malformed selector from the options: skip it, the next one may work
    }
  }
  return null;
};

// The panorama's canvas: the element itself, else Google's street-view canvas inside it, else the largest
// canvas inside it.
LF.findPanoramaCanvas = function findPanoramaCanvas(selectors) {
  const root = LF.findFirst(selectors);
  if (!root) return null;
  if (root instanceof HTMLCanvasElement) return root;
  const scene = root.querySelector("canvas.widget-scene-canvas");
  if (scene) return scene;
  let best = null;
  let bestArea = 0;
  for (const c of root.querySelectorAll("canvas")) {
    const r = c.getBoundingClientRect();
    const area = r.width * r.height;
    if (area > bestArea) {
      best = c;
      bestArea = area;
    }
  }
  return best;
};

// The round box's second child reads "N / 5" ("2/5" returned); else the whole box's "N / M"; else its digits;
// no counter → null.
LF.readRound = function readRound(selectors) {
  const el = LF.findFirst(selectors);
  if (!el) return null;
  for (const text of [el.children[1]?.textContent, el.textContent]) {
    const m = (text || "").match(/(\d+)\s*\/\s*(\d+)/);
    if (m) return `${m[1]}/${m[2]}`;
  }
  const digits = el.textContent.match(/\d+/g);
  return digits ? digits.join("-") : null;
};

// The self-check: the hooks every game page has. One not found for `graceMs` on a game page is reported by
// name, unless the results screen is up (it hides the game legitimately). The guess map is not checked:
// a spectator, or a round between guesses, has none.
LF.CHECKED_HOOKS = ["panorama", "roundNumber", "compass"];

LF.HookCheck = class HookCheck {
  constructor(graceMs) {
    this.graceMs = graceMs;
    this.missingSince = new Map();
  }

  // The hooks missing now (keys of LF.CHECKED_HOOKS, in that order).
  update(selectors, now = performance.now()) {
    if (LF.findFirst(selectors.results)) {
      this.missingSince.clear();
      return [];
    }
    const missing = [];
    for (const key of LF.CHECKED_HOOKS) {
      if (LF.findFirst(selectors[key])) {
        this.missingSince.delete(key);
        continue;
      }
      if (!this.missingSince.has(key)) this.missingSince.set(key, now);
      if (now - this.missingSince.get(key) >= this.graceMs) missing.push(key);
    }
    return missing;
  }

  reset() {
    this.missingSince.clear();
  }
};

// What the overlay says about missing hooks: which, the selectors tried, and where to change them.
LF.missingHooksText = function missingHooksText(missing, selectors) {
  if (!missing.length) return "";
  const which = missing.map((k) => `${LF.HOOK_LABELS[k]} (tried ${(selectors[k] || []).join(", ") || "nothing"})`);
  return `Not found on this page: ${which.join("; ")}. The game's page may have changed: ` +
    "the selectors can be changed in the extension's options (Selectors).";
};

// The compass needle's rotation, as drawn: the heading the player looks at (null if there is no compass).
LF.readHeading = function readHeading(selectors) {
  const compass = LF.findFirst(selectors);
  if (!compass) return null;
  for (const el of [compass, ...compass.querySelectorAll("*")]) {
    const t = getComputedStyle(el).transform;
    const m = t && t.match(/^matrix\(([^,]+),\s*([^,]+)/);
    if (m) {
      const angle = (Math.atan2(Number(m[2]), Number(m[1])) * 180) / Math.PI;   // the needle turns against the view
      return ((-angle % 360) + 360) % 360;
    }
  }
  return null;
};

// Is the element actually on screen, not covered by a result screen or a modal?
LF.isShown = function isShown(el, ignore) {
  const r = el.getBoundingClientRect();
  if (r.width < 64 || r.height < 64) return false;
  const points = [[0.5, 0.5], [0.25, 0.3], [0.75, 0.3], [0.3, 0.7], [0.7, 0.7]];
  const container = el.closest("[data-qa]") || el.parentElement || el;
  return points.some(([fx, fy]) => {
    const hit = document.elementFromPoint(r.left + r.width * fx, r.top + r.height * fy);
    return hit && (hit === el || container.contains(hit)) && !ignore?.contains(hit);
  });
};
