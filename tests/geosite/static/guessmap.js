// The guess map: an equirectangular world (outlines from world.json); a click places the marker.
function createGuessMap(root, onChange) {
  const canvas = root.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const marker = document.createElement("div");
  marker.className = "guess-map_marker__~";
  marker.dataset.qa = "guess-marker";
  marker.hidden = true;
  canvas.parentElement.appendChild(marker);
  let world = { countries: [] };
  let guess = null;

  const toXY = (lat, lng) => [(lng + 180) / 360 * canvas.width, (90 - lat) / 180 * canvas.height];
  function draw() {
    ctx.fillStyle = "#a9cbe8";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#f2efe6";
    ctx.strokeStyle = "#b9b3a3";
    ctx.lineWidth = 0.5;
    for (const c of world.countries) {
      for (const [ring] of c.polygons) {   // outer rings: a hole is another country's polygon, drawn alike
        ctx.beginPath();
        ring.forEach(([lng, lat], i) => { const [x, y] = toXY(lat, lng); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
        ctx.closePath();
        ctx.fill();
        ctx.stroke();
      }
    }
  }
  fetch("/static/world.json").then((r) => r.json()).then((w) => { world = w; draw(); });
  draw();

  canvas.addEventListener("click", (e) => {
    const rect = canvas.getBoundingClientRect();
    const x = (e.clientX - rect.left) / rect.width, y = (e.clientY - rect.top) / rect.height;
    guess = { lat: 90 - y * 180, lng: x * 360 - 180 };
    marker.hidden = false;
    marker.style.left = `${x * 100}%`;
    marker.style.top = `${y * 100}%`;
    onChange(guess);
  });
  return {
    get guess() { return guess; },
    reset() { guess = null; marker.hidden = true; onChange(null); },
  };
}
