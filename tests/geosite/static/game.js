// Classic and duels: five rounds; the panorama, a round counter, a guess map. After a guess, classic shows the
// results screen (`result-layout_root__`, result-view-top/-bottom, "Next round" / "Play again"); duels shows a
// round-result overlay for a moment and moves on by itself, as the real duels do.
(() => {
  const cfg = window.__GEOSITE__;
  const $ = (sel) => document.querySelector(sel);
  const layout = $(".in-game_content__~");
  const roundValue = $('[data-qa="round-number"] > :nth-child(2)');
  const scoreValue = $('[data-qa="score"] > :nth-child(2)');
  const guessButton = $('[data-qa="perform-guess"]');
  const pano = createPanorama($('[data-qa="panorama"]'), cfg);
  const map = createGuessMap($('[data-qa="guess-map"]'), (g) => { guessButton.disabled = !g; });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let state = null;

  async function api(path, body) {
    const init = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
    const r = await fetch(`/api/play/${cfg.game}${path}`, init);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  const fmt = (n) => n.toLocaleString("en-US");
  // where a point lies on the result map's 2:1 world
  const pin = (p, qa) => `<div class="map-pin_mapPin__~ result-map_roundPin__~" data-qa="${qa}"
    style="left:${(p.lng + 180) / 3.6}%;top:${(90 - p.lat) / 1.8}%"></div>`;

  function showResult(s) {
    const r = s.result;
    const view = document.createElement("div");
    view.className = "result-layout_root__~";
    const last = s.phase === "finished";
    view.innerHTML = `
      <div data-qa="result-view-top" class="result-layout_top__~">
        <div class="coordinate-result-map_map__~ result-map_map__~">
          ${pin(r.correct, "correct-location-marker")}${pin(r.guess, "guess-location-marker")}</div>
      </div>
      <div data-qa="result-view-bottom" class="result-layout_bottom__~">
        <h2>${last ? "Game summary" : `Round ${r.round}`}</h2>
        <div data-qa="distance">Your guess was ${fmt(r.distance_km)} km from the correct location</div>
        <div data-qa="round-points">${fmt(r.points)} points</div>
        <div data-qa="correct-location">Correct location: ${r.correct.lat.toFixed(5)}, ${r.correct.lng.toFixed(5)}</div>
        ${last ? `<div data-qa="final-score">Total: ${fmt(s.score)} points</div>
          <form method="post" action="/maps/world/start">
            <button type="submit" data-qa="play-again-button" class="button_button__~">Play again</button></form>`
               : `<button data-qa="close-round-result" class="button_button__~">Next round</button>`}
      </div>`;
    layout.appendChild(view);
    view.querySelector('[data-qa="close-round-result"]')?.addEventListener("click", () => next());
  }

  async function showDuelsResult(s) {
    const r = s.result;
    const view = document.createElement("div");
    view.className = "result-overlay-2025_root__~";
    view.innerHTML = `<div class="result-overlay-2025_title__~">Round ${r.round}</div>
      <div data-qa="round-points">${fmt(r.points)} points · ${fmt(r.distance_km)} km</div>
      ${s.phase === "finished" ? '<div data-qa="game-finished">Game over</div>' : ""}`;
    layout.appendChild(view);
    if (s.phase === "finished") return;
    await sleep(cfg.resultSeconds * 1000);
    next();
  }

  // Between rounds the real site shows a spinner while the next panorama loads.
  async function next() {
    const spinner = document.createElement("div");
    spinner.className = "fullscreen-spinner_root__~";
    layout.appendChild(spinner);
    try {
      render(await api("/next", {}));
    } finally {
      spinner.remove();
    }
  }

  function render(s) {
    const newRound = !state || state.round !== s.round;
    state = s;
    roundValue.textContent = `${s.round} / ${s.total}`;
    if (scoreValue) scoreValue.textContent = fmt(s.score);
    for (const el of document.querySelectorAll('.result-layout_root__~, .result-overlay-2025_root__~')) el.remove();
    if (newRound) {
      map.reset();
      pano.show(s.image);
    }
    if (s.phase !== "playing") (cfg.mode === "duels" ? showDuelsResult : showResult)(s);
  }

  guessButton.addEventListener("click", async () => {
    if (!map.guess) return;
    guessButton.disabled = true;
    render(await api("/guess", map.guess));
  });

  api("").then(render);
})();
