// Singleplayer: five rounds; the panorama, a round counter, a guess map; after a guess, the result view.
(() => {
  const cfg = window.__GEOSITE__;
  const H = cfg.hash;
  const $ = (sel) => document.querySelector(sel);
  const layout = $(`.game_layout__${H}`);
  const roundValue = $(`[data-qa="round-number"] .status_value__${H}`);
  const scoreValue = $(`[data-qa="score"] .status_value__${H}`);
  const guessButton = $('[data-qa="perform-guess"]');
  const pano = createPanorama($('[data-qa="panorama"]'), cfg);
  const map = createGuessMap($('[data-qa="guess-map"]'), (g) => { guessButton.disabled = !g; });
  let state = null;

  async function api(path, body) {
    const init = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
    const r = await fetch(`/api/play/${cfg.game}${path}`, init);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  const fmt = (n) => n.toLocaleString("en-US");

  function showResult(s) {
    const r = s.result;
    const view = document.createElement("div");
    view.className = `result_layout__${H}`;
    view.dataset.qa = "result-view";
    const last = s.phase === "finished";
    view.innerHTML = `
      <div class="result_card__${H}">
        <h2>${last ? "Game summary" : `Round ${r.round}`}</h2>
        <div data-qa="distance">Your guess was ${fmt(r.distance_km)} km from the correct location</div>
        <div data-qa="round-points">${fmt(r.points)} points</div>
        <div data-qa="correct-location">Correct location: ${r.correct.lat.toFixed(5)}, ${r.correct.lng.toFixed(5)}</div>
        ${last ? `<div data-qa="final-score">Total: ${fmt(s.score)} points</div>
          <form method="post" action="/maps/world/start">
            <button type="submit" data-qa="play-again" class="button_button__${H}">Play again</button></form>`
               : `<button data-qa="close-round-result" class="button_button__${H}">Next round</button>`}
      </div>`;
    layout.appendChild(view);
    view.querySelector('[data-qa="close-round-result"]')?.addEventListener("click", async () => {
      render(await api("/next", {}));
    });
  }

  function render(s) {
    const newRound = !state || state.round !== s.round;
    state = s;
    roundValue.textContent = `${s.round} / ${s.total}`;
    scoreValue.textContent = fmt(s.score);
    $('[data-qa="result-view"]')?.remove();
    if (newRound) {
      map.reset();
      pano.show(s.image);
    }
    if (s.phase !== "playing") showResult(s);
  }

  guessButton.addEventListener("click", async () => {
    if (!map.guess) return;
    guessButton.disabled = true;
    render(await api("/guess", map.guess));
  });

  api("").then(render);
})();
