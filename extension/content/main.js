// The round loop: find the panorama, notice a new round, wait until the frame has rendered and holds
// still, capture it, send it (pixels, a random round id, a frame counter, the compass heading — nothing
// else), show the answer; when the player pans and pauses, send the new view under the same round id.
// Around it: fair play (per-mode switches, "reveal after I guess"), the result and summary screens, and
// the round log (what the model said each round of this game).
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
  const ANSWER_TIMEOUT_MS = 8000;     // answers take 0.1-2.5 s: this long without one is worth saying
  const MAX_FRAMES_PER_ROUND = 8;
  const REVEAL_NOTE = "Reveal after I guess: the model's answer shows on the result screen.";
  // (under /multiplayer/ a game is /multiplayer/<mode>/<id>; /multiplayer/duels alone is a lobby)
  const GAME_PATH = /^\/(game|challenge|duels|team-duels|battle-royale|live-challenge|bullseye|competitive|party|multiplayer\/[\w-]+)\//;
  // The game's summary, and the round's result beside the "results" hook of the settings: its Next round button
  // and the duels' result overlay (geoguessr-dom.md's stable hooks first, then the local site's).
  const SUMMARY_SCREEN = ['[data-qa="play-again-button"]', '[data-qa="play-same-map"]', '[data-qa="final-score"]',
                          '[data-qa="game-finished"]'];
  const MORE_RESULT_HOOKS = ['[data-qa="close-round-result"]', '[class*="result-overlay"]'];

  let settings = await LF.loadSettings();
  const capture = new LF.Capture();
  const overlay = new LF.Overlay({ onCaptureNow: askNow });
  const hookCheck = new LF.HookCheck(NOT_FOUND_MS);
  let connection = { status: "connecting", detail: "" };
  let round = null;
  let source = settings.captureMode === "tab" ? "tab" : "canvas";
  let busy = false;
  let active = false;
  let seenPanoramaAt = 0;
  let pageStart = performance.now();
  let blankSince = null;
  let lastTick = 0;
  let screenshotRefused = false;
  let greeted = false;                 // said hello to the background since the page (or the mode) became active
  let screen = "playing";              // "playing" | "result" | "summary"
  let log = null;                      // this game's round log, kept in storage until the next game
  let lastRoundId = null;              // the round whose result may be on screen (its panorama may be gone)

  const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("");
  const gameMode = () => LF.detectMode(location.pathname, document);
  const allowed = () => LF.modeEnabled(settings, gameMode());
  const shown = (selectors) => { const el = LF.findFirst(selectors); return !!el && el.getClientRects().length > 0; };

  function newRound(key, canvas) {
    round = {
      key, canvas, id: randomId(), label: LF.readRound(settings.selectors.roundNumber), frames: 0, sentSig: null,
      sentSize: null,   // the canvas's size when sentSig was taken: a view at another size is a resize, not a pan
      lastSig: null, stableSince: null, sent: new Map(), shapes: new Map(), forceCapture: false, answered: false,
      asking: null,   // { frame (null until sent), since, manual }: a view waiting for its answer
      shown: null,    // the last answer, to show when "reveal after I guess" is turned off mid-round
    };
    lastRoundId = round.id;
    blankSince = null;
    overlay.setBusy(false);
    overlay.clearPrediction(settings.revealAfterGuess ? REVEAL_NOTE : "");   // the status line says what it waits for
  }

  function askNow() {
    if (!round || !allowed()) return;
    round.forceCapture = true;
    round.asking = { frame: null, since: performance.now(), manual: true };
    render();
  }

  function askingState() {
    const a = round?.asking;
    if (!a) return null;
    return performance.now() - a.since > ANSWER_TIMEOUT_MS ? "timeout" : "asking";
  }

  function render() {
    overlay.setVisible(settings.overlay && active);
    const mode = gameMode();
    const on = LF.modeEnabled(settings, mode);   // (detectMode may query the page: once per render)
    const missing = active && on ? hookCheck.update(settings.selectors) : (hookCheck.reset(), []);
    overlay.setHookNotice(LF.missingHooksText(missing, settings.selectors));
    if (active && !on) {
      overlay.setBusy(false);
      return overlay.setStatus("off", `Off in ${LF.modeLabel(mode).toLowerCase()} (fair play). You can turn it on in the options.`);
    }
    let state = connection.status;
    const waiting = state === "connected" && askingState();
    if (active && !round && performance.now() - Math.max(seenPanoramaAt, pageStart) > NOT_FOUND_MS) state = "no_panorama";
    else if (state === "connected" && round && !round.answered && round.frames === 0 && !round.asking) {
      state = screenshotRefused ? "unreadable" : "waiting";
    } else if (waiting && screen === "playing") state = waiting;
    overlay.setBusy(waiting === "asking" && !!round.asking.manual);
    overlay.setStatus(state, LF.STATUS_TEXT[state] || connection.detail || state);
  }

  async function hello() {
    try {
      const r = await api.runtime.sendMessage({ type: LF.MSG.HELLO });
      if (r?.status) connection = { status: r.status, detail: r.detail };
    } catch {
      connection = { status: "connecting", detail: "" };
    }
    render();
  }

  // --- the round log ------------------------------------------------------------------------------------
  async function loadLog() {
    const { roundLog } = await api.storage.local.get("roundLog");
    log = roundLog?.game === location.pathname ? roundLog
      : { game: location.pathname, mode: gameMode(), started: new Date().toISOString(), rounds: [] };
  }

  function logAnswer(r, p) {
    if (!log) return;
    const entry = {
      round: r.label || String(log.rounds.length + 1), confidence: p.confidence, frames: p.frames, model: p.model,
      countries: p.countries.slice(0, 5).map(({ code, name, p: prob }) => ({ code, name, p: Math.round(prob * 1e4) / 1e4 })),
      at: new Date().toISOString(),
    };
    const i = log.rounds.findIndex((e) => e.id === r.id);
    if (i >= 0) log.rounds[i] = { id: r.id, ...entry };
    else log.rounds.push({ id: r.id, ...entry });
    api.storage.local.set({ roundLog: log });
  }

  const exportedLog = () => ({ ...log, rounds: log.rounds.map(({ id, ...e }) => e) });

  // --- screens --------------------------------------------------------------------------------------
  function updateScreen() {
    const now = shown(SUMMARY_SCREEN) ? "summary" : shown([...settings.selectors.results, ...MORE_RESULT_HOOKS]) ? "result" : "playing";
    if (now === screen) return;
    const redraw = screen === "";   // the reveal setting changed: after a result screen, the round is over
    screen = now;
    overlay.hideMinimap();
    if (screen === "summary") overlay.showLog(exportedLog());
    else if (screen === "result") overlay.showRoundOver(log?.rounds.find((e) => e.id === lastRoundId), settings.revealAfterGuess);
    else if (redraw && round?.shown && !settings.revealAfterGuess) overlay.showPrediction(...round.shown);
    else overlay.clearPrediction(settings.revealAfterGuess ? REVEAL_NOTE : "");
  }

  // --- capture --------------------------------------------------------------------------------------
  async function sample(canvas) {
    if (source === "tab") {
      const shot = await capture.captureTab(canvas);
      return { sig: await capture.signatureOfBase64(shot.image), shot };
    }
    return { sig: capture.signature(canvas), shot: null };
  }

  // its buffer's size and its size on screen (screenshot mode crops the latter)
  const canvasSize = (c) => `${c.width}x${c.height} ${c.clientWidth}x${c.clientHeight}`;

  async function send(canvas, sig, shot, t0) {
    const frame = shot || (await capture.encodeCanvas(canvas));
    const localFrame = round.frames++;
    round.sentSig = sig;
    round.sentSize = canvasSize(canvas);
    round.sent.set(localFrame, { t0, at: performance.now() });
    const manual = !!round.asking?.manual;
    round.asking = { frame: localFrame, since: manual ? round.asking.since : performance.now(), manual };
    await api.runtime.sendMessage({
      type: LF.MSG.FRAME,
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
    active = !!canvas || GAME_PATH.test(location.pathname);
    if (!active) {
      greeted = false;
      return render();
    }
    if (!log || log.game !== location.pathname) await loadLog();
    if (!allowed()) {   // fair play: nothing is captured or sent in this mode
      greeted = false;
      overlay.attach();
      overlay.clearPrediction("");
      round = null;
      return render();
    }
    if (!greeted) {
      greeted = true;
      hello();
    }
    overlay.attach();
    const guessMap = LF.findFirst(settings.selectors.guessMap);
    overlay.setKeepOut(guessMap, LF.findFirst(settings.selectors.roundNumber));
    overlay.updateMinimap(guessMap);
    updateScreen();   // a result screen may replace the panorama altogether
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
    if (!LF.isShown(canvas, overlay.host)) {   // a result screen or a menu covers it: so does nothing of ours
      overlay.hideMinimap();
      return;
    }
    if (source === "tab" && performance.now() - lastTick < TAB_TICK_MS) return;
    lastTick = performance.now();
    const t0 = performance.now();
    let s;
    try {
      s = await sample(canvas);
    } catch (e) {
      if (source === "canvas" && e?.name === "SecurityError" && settings.captureMode === "auto") source = "tab";
      return;
    }
    const r = round;
    if (round.key !== key) return;   // the round changed while sampling
    if (LF.Capture.blank(s.sig)) {
      r.lastSig = null;
      blankSince ??= performance.now();
      if (source === "canvas" && settings.captureMode === "auto" && performance.now() - blankSince > BLANK_FALLBACK_MS) {
        // an unreadable canvas (its context was made before our script, or elsewhere): try a screenshot
        blankSince = performance.now();
        try {
          const probe = await capture.captureTab(canvas);
          if (!LF.Capture.blank(await capture.signatureOfBase64(probe.image))) source = "tab";
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
    const size = canvasSize(canvas);
    if (!first && size !== r.sentSize) {
      // resized (window or canvas): the same view, reframed; later pans are measured from it, nothing is sent
      r.sentSig = s.sig;
      r.sentSize = size;
    }
    const panned = !first && LF.Capture.diff(s.sig, r.sentSig) > PAN_DIFF && performance.now() - r.stableSince >= PAN_PAUSE_MS;
    if (first || panned || manual) {
      r.forceCapture = false;
      await send(canvas, s.sig, s.shot, t0);
      render();
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

  function onPrediction(msg) {
    const p = msg.prediction;
    if (!round || p.round !== round.id) return;   // an answer for a round that is over
    const r = round;
    const sent = r.sent.get(p.frame);
    r.answered = true;
    if (r.asking && r.asking.frame != null && p.frame >= r.asking.frame) r.asking = null;
    logAnswer(r, p);
    requestAnimationFrame(() => {
      const shapes = msg.shapes || r.shapes.get(p.frame) || {};
      r.shown = [p, shapes, settings.topK, sent == null ? NaN : performance.now() - sent.t0];
      if (round === r && screen === "playing" && !settings.revealAfterGuess) overlay.showPrediction(...r.shown);
      render();
    });
  }

  api.runtime.onMessage.addListener((msg) => {
    if (msg.type === LF.MSG.STATUS) {
      connection = { status: msg.status, detail: msg.detail };
      render();
    } else if (msg.type === LF.MSG.PREDICTION) {
      onPrediction(msg);
    } else if (msg.type === LF.MSG.RESENT && round && msg.round === round.id) {
      // sent again after a reconnect: the time it waited for the connection is not the model's
      const s = round.sent.get(msg.frame);
      if (s) {
        const now = performance.now();
        s.t0 += now - s.at;
        s.at = now;
      }
      if (round.asking) round.asking.since = performance.now();
    } else if (msg.type === LF.MSG.SHAPES && round && msg.round === round.id) {
      round.shapes.set(msg.frame, msg.shapes);   // the answer may still be waiting for its animation frame
      if (round.shown?.[0].frame === msg.frame) round.shown[1] = msg.shapes;
      if (!settings.revealAfterGuess && screen === "playing") overlay.setShapes(msg.frame, msg.shapes);
    } else if (msg.type === LF.MSG.ERROR && round && msg.round === round.id) {
      round.asking = null;
      overlay.clearPrediction(`Companion: ${msg.message}`);
      render();
    } else if (msg.type === LF.MSG.TOGGLE_OVERLAY) {
      // kept in the settings: the overlay stays hidden across reloads until the hotkey shows it again
      settings.overlay = !overlay.visible;
      LF.saveSettings({ overlay: settings.overlay });
      render();
    }
  });

  api.storage.onChanged.addListener(async (changes, area) => {
    if (area !== "local" || !changes.settings) return;
    const before = settings;
    settings = await LF.loadSettings();
    source = settings.captureMode === "tab" ? "tab" : "canvas";
    if (before.revealAfterGuess !== settings.revealAfterGuess && round) {
      screen = "";   // redraw the screen under the new rule
      updateScreen();
    }
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

  addEventListener("pagehide", () => api.runtime.sendMessage({ type: LF.MSG.BYE }).catch(() => {}));
  setInterval(() => { if (active && allowed()) hello(); }, 15000);   // also wakes a background that the browser put to sleep
  setInterval(render, 1000);   // the wait for an answer turns into "no answer yet" without a message to trigger it
  loop();
})();
