// The round loop: find the panorama, notice a new round, wait until the frame has rendered and holds
// still, capture it, send it (pixels, a random round id, a frame counter, the compass heading — nothing
// else), show the answer; when the player pans and pauses, send the new view under the same round id.
"use strict";

(async () => {
  const api = LF.api;
  const TICK_MS = 250;
  const TAB_TICK_MS = 700;            // screenshot mode: each sample is a screenshot (2/s at most)
  const STABLE_DIFF = 1.5;            // mean grey-level change below which two samples are "the same frame"
  const PAN_DIFF = 6;                 // change from the last sent view that counts as a new view
  const PAN_PAUSE_MS = 700;           // the player must hold still this long before a pan is captured
  const BLANK_FALLBACK_MS = 2500;     // canvas blank this long while the tab shows a picture: use screenshots
  const NOT_FOUND_MS = 3000;
  const MAX_FRAMES_PER_ROUND = 8;
  // (duels moved under /multiplayer/ in 2026: /multiplayer/<mode>/<id>)
  const GAME_PATH = /^\/(game|challenge|duels|team-duels|battle-royale|live-challenge|bullseye|competitive|party|multiplayer\/[\w-]+)\//;

  let settings = await LF.loadSettings();
  const capture = new LF.Capture();
  const overlay = new LF.Overlay({ onCaptureNow: () => { if (round) round.forceCapture = true; } });
  const hookCheck = new LF.HookCheck(NOT_FOUND_MS);
  let connection = { status: "connecting", detail: "" };
  let round = null;
  let mode = settings.captureMode === "tab" ? "tab" : "canvas";
  let busy = false;
  let active = false;
  let seenPanoramaAt = 0;
  let pageStart = performance.now();
  let blankSince = null;
  let lastTick = 0;
  let screenshotRefused = false;

  const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("");

  function newRound(key, canvas) {
    round = {
      key, canvas, id: randomId(), frames: 0, sentSig: null, lastSig: null, stableSince: null,
      sentAt: new Map(), shapes: new Map(), forceCapture: false, answered: false,
    };
    blankSince = null;
    overlay.clearPrediction("Waiting for the panorama…");
  }

  function render() {
    overlay.setVisible(settings.overlay && active);
    const missing = active ? hookCheck.update(settings.selectors) : (hookCheck.reset(), []);
    overlay.setHookNotice(LF.missingHooksText(missing, settings.selectors));
    let state = connection.status;
    if (active && !round && performance.now() - Math.max(seenPanoramaAt, pageStart) > NOT_FOUND_MS) state = "no_panorama";
    else if (state === "connected" && round && !round.answered && round.frames === 0) {
      state = screenshotRefused ? "unreadable" : "waiting";
    }
    overlay.setStatus(state, LF.STATUS_TEXT[state] || connection.detail || state);
  }

  async function hello() {
    try {
      const r = await api.runtime.sendMessage({ type: "hello" });
      if (r?.status) connection = { status: r.status, detail: r.detail };
    } catch {
      connection = { status: "connecting", detail: "" };
    }
    render();
  }

  async function sample(canvas) {
    if (mode === "tab") {
      const shot = await capture.captureTab(canvas);
      return { sig: await capture.signatureOfBase64(shot.image), shot };
    }
    return { sig: capture.signature(canvas), shot: null };
  }

  async function send(canvas, sig, shot, t0) {
    const frame = shot || (await capture.encodeCanvas(canvas));
    const localFrame = round.frames++;
    round.sentSig = sig;
    round.sentAt.set(localFrame, t0);
    await api.runtime.sendMessage({
      type: "frame",
      round: round.id,
      frame: localFrame,
      heading: LF.readHeading(settings.selectors.compass),
      topK: settings.topK,
      image: frame.image,
    });
  }

  async function tick() {
    const canvas = LF.findPanoramaCanvas(settings.selectors.panorama);
    if (canvas) seenPanoramaAt = performance.now();
    const wasActive = active;
    active = !!canvas || GAME_PATH.test(location.pathname);
    if (!active) return render();
    if (!wasActive) hello();
    overlay.attach();
    overlay.updateMinimap(LF.findFirst(settings.selectors.guessMap));
    if (!canvas) {
      round = null;
      return render();
    }
    const key = `${location.pathname}|${LF.readRound(settings.selectors.roundNumber) ?? "-"}`;
    // no round counter on this page: a new canvas is a new round
    if (!round || round.key !== key || (key.endsWith("|-") && round.canvas !== canvas)) newRound(key, canvas);
    render();
    const manual = round.forceCapture;
    if (!(settings.autoCapture || manual) || round.frames >= MAX_FRAMES_PER_ROUND && !manual) return;
    if (!LF.isShown(canvas, overlay.host)) return;   // a result screen or a menu covers it
    if (mode === "tab" && performance.now() - lastTick < TAB_TICK_MS) return;
    lastTick = performance.now();
    const t0 = performance.now();
    let s;
    try {
      s = await sample(canvas);
    } catch (e) {
      if (mode === "canvas" && e?.name === "SecurityError" && settings.captureMode === "auto") mode = "tab";
      return;
    }
    const r = round;
    if (round.key !== key) return;   // the round changed while sampling
    if (LF.Capture.blank(s.sig)) {
      r.lastSig = null;
      blankSince ??= performance.now();
      if (mode === "canvas" && settings.captureMode === "auto" && performance.now() - blankSince > BLANK_FALLBACK_MS) {
        // an unreadable canvas (its context was made before our script, or elsewhere): try a screenshot
        blankSince = performance.now();
        try {
          const probe = await capture.captureTab(canvas);
          if (!LF.Capture.blank(await capture.signatureOfBase64(probe.image))) mode = "tab";
        } catch (e) {
          // no screenshot either (not allowed in the options?): keep waiting for the canvas, and say why
          screenshotRefused = /permission/i.test(String(e?.message));
        }
      }
      return;
    }
    blankSince = null;
    const still = r.lastSig && LF.Capture.diff(s.sig, r.lastSig) < STABLE_DIFF;
    r.lastSig = s.sig;
    if (!still) {
      r.stableSince = null;
      return;
    }
    r.stableSince ??= performance.now();
    const first = r.frames === 0;
    const panned = !first && LF.Capture.diff(s.sig, r.sentSig) > PAN_DIFF && performance.now() - r.stableSince >= PAN_PAUSE_MS;
    if (first || panned || manual) {
      r.forceCapture = false;
      await send(canvas, s.sig, s.shot, t0);
    }
  }

  async function loop() {
    if (!busy) {
      busy = true;
      try {
        await tick();
      } catch (e) {
        console.debug("Lost & Found:", e);
      } finally {
        busy = false;
      }
    }
    setTimeout(loop, TICK_MS);
  }

  api.runtime.onMessage.addListener((msg) => {
    if (msg.type === "status") {
      connection = { status: msg.status, detail: msg.detail };
      render();
    } else if (msg.type === "prediction") {
      const p = msg.prediction;
      if (!round || p.round !== round.id) return;   // an answer for a round that is over
      const t0 = round.sentAt.get(p.frame);
      round.answered = true;
      requestAnimationFrame(() => {
        const shapes = msg.shapes || round?.shapes.get(p.frame) || {};
        overlay.showPrediction(p, shapes, settings.topK, t0 == null ? NaN : performance.now() - t0);
        render();
      });
    } else if (msg.type === "shapes" && round && msg.round === round.id) {
      round.shapes.set(msg.frame, msg.shapes);   // the answer may still be waiting for its animation frame
      overlay.setShapes(msg.frame, msg.shapes);
    } else if (msg.type === "error" && round && msg.round === round.id) {
      overlay.clearPrediction(`Companion: ${msg.message}`);
    } else if (msg.type === "toggle-overlay") {
      settings.overlay = !overlay.visible;
      render();
    }
  });

  api.storage.onChanged.addListener(async (changes, area) => {
    if (area !== "local" || !changes.settings) return;
    settings = await LF.loadSettings();
    mode = settings.captureMode === "tab" ? "tab" : "canvas";
    render();
  });

  // React to the round counter at once instead of waiting for the next tick.
  new MutationObserver(() => {
    const counter = LF.findFirst(settings.selectors.roundNumber);
    if (round && counter && !round.key.endsWith(`|${LF.readRound(settings.selectors.roundNumber)}`) && !busy) {
      busy = true;
      tick().finally(() => { busy = false; });
    }
  }).observe(document.documentElement, { childList: true, subtree: true, characterData: true });

  addEventListener("pagehide", () => api.runtime.sendMessage({ type: "bye" }).catch(() => {}));
  setInterval(() => { if (active) hello(); }, 15000);   // also wakes a background that the browser put to sleep
  loop();
})();
