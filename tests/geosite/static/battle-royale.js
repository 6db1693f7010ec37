// Battle Royale Countries, spectated: each round shows the panorama for a fixed time, then the country.
(() => {
  const cfg = window.__GEOSITE__;
  const $ = (sel) => document.querySelector(sel);
  const layout = $(".in-game_content__~");
  const roundValue = $('[data-qa="round-number"] > :nth-child(2)');
  const timer = $('[data-qa="round-timer"]');
  const pano = createPanorama($('[data-qa="panorama"]'), cfg);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function result(n) {
    for (;;) {
      const r = await fetch(`/api/br/${cfg.game}/round/${n}/result`);
      if (r.ok) return r.json();
      if (r.status !== 425) throw new Error(`result: HTTP ${r.status}`);
      await sleep(100);
    }
  }

  async function play(n) {
    const r = await (await fetch(`/api/br/${cfg.game}/round/${n}`)).json();
    $('[data-qa="round-result-country"]')?.remove();
    roundValue.textContent = `${n} / ${r.total}`;
    pano.show(r.image);
    const end = performance.now() + r.seconds * 1000;
    while (performance.now() < end) {
      timer.textContent = Math.ceil((end - performance.now()) / 1000);
      await sleep(100);
    }
    timer.textContent = "0";
    const res = await result(n);
    const banner = document.createElement("div");
    banner.className = "br_result__~";
    banner.dataset.qa = "round-result-country";
    banner.textContent = `${res.name} (${res.country})`;
    layout.appendChild(banner);
    await sleep(cfg.resultSeconds * 1000);
    if (n < r.total) return play(n + 1);
    banner.remove();
    const done = document.createElement("div");
    done.className = "br_finished__~";
    done.dataset.qa = "game-finished";
    done.textContent = "Game over";
    layout.appendChild(done);
  }

  play(1);
})();
