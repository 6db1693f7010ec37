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

// The panorama's canvas: the element itself, or the largest visible canvas inside it.
LF.findPanoramaCanvas = function findPanoramaCanvas(selectors) {
  const root = LF.findFirst(selectors);
  if (!root) return null;
  if (root instanceof HTMLCanvasElement) return root;
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

// "Round 2 / 5" → "2/5"; anything else with a digit → its digits; no counter → null.
LF.readRound = function readRound(selectors) {
  const el = LF.findFirst(selectors);
  const text = el?.textContent || "";
  const m = text.match(/(\d+)\s*\/\s*(\d+)/);
  if (m) return `${m[1]}/${m[2]}`;
  const digits = text.match(/\d+/g);
  return digits ? digits.join("-") : null;
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
