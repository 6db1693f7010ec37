// The street view: a WebGL canvas drawing the round's image as a textured quad, created like Google Maps
// does, WITHOUT preserveDrawingBuffer (so the frame is gone from the canvas once it has been composited).
// Dragging or the arrow keys pan it a little; the compass follows. Loading takes a random delay, as
// over the network; faults: `hang` (never draws) and `black` (draws an all-black frame).
function createPanorama(root, config) {
  const canvas = root.querySelector("canvas");
  const needle = document.querySelector('[data-qa="compass"] .compass_needle__~');
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: false });
  const vs = "attribute vec2 p; varying vec2 v; void main() { v = p; gl_Position = vec4(p, 0.0, 1.0); }";
  const fs = `precision mediump float; uniform sampler2D t; uniform vec2 s; uniform float o; varying vec2 v;
    void main() { gl_FragColor = texture2D(t, vec2(fract(0.5 + v.x * 0.5 * s.x + o), 0.5 - v.y * 0.5 * s.y)); }`;
  const program = gl.createProgram();
  for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, src);
    gl.compileShader(shader);
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  gl.useProgram(program);
  gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const loc = gl.getAttribLocation(program, "p");
  gl.enableVertexAttribArray(loc);
  gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
  const texture = gl.createTexture();
  gl.bindTexture(gl.TEXTURE_2D, texture);
  for (const [k, v] of [[gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE],
                        [gl.TEXTURE_MIN_FILTER, gl.LINEAR], [gl.TEXTURE_MAG_FILTER, gl.LINEAR]]) {
    gl.texParameteri(gl.TEXTURE_2D, k, v);
  }

  let image = null;   // the loaded round image, null while loading
  let offset = 0;     // pan, in image widths
  let loadId = 0;

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    gl.viewport(0, 0, w, h);
    if (config.black && image) { gl.clearColor(0, 0, 0, 1); gl.clear(gl.COLOR_BUFFER_BIT); return; }
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!image) return;
    // "cover": fill the canvas, cropping the image's longer side
    const a = w / h, ia = image.naturalWidth / image.naturalHeight;
    gl.uniform2f(gl.getUniformLocation(program, "s"), a > ia ? 1 : a / ia, a > ia ? ia / a : 1);
    gl.uniform1f(gl.getUniformLocation(program, "o"), offset);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    if (needle) needle.style.transform = `rotate(${-heading()}deg)`;
  }

  function heading() {
    return ((((baseHeading + offset * 360) % 360) + 360) % 360);
  }

  let baseHeading = 0;
  async function show(url, initialHeading = 0) {
    const id = ++loadId;
    image = null;
    delete root.dataset.loaded;
    offset = 0;
    baseHeading = initialHeading;
    draw();
    if (config.hang) return;
    const [lo, hi] = config.renderDelayMs || [200, 800];
    const img = new Image();
    img.src = url;
    await Promise.all([img.decode(), new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)))]);
    if (id !== loadId) return;   // a newer round started meanwhile
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, img);
    image = img;
    root.dataset.loaded = "true";
    draw();
  }

  function pan(delta) {
    offset += delta;
    draw();
  }

  let dragX = null;
  canvas.addEventListener("pointerdown", (e) => { dragX = e.clientX; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (dragX === null) return;
    pan(-(e.clientX - dragX) / canvas.clientWidth * 0.25);
    dragX = e.clientX;
  });
  canvas.addEventListener("pointerup", () => { dragX = null; });
  window.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") pan(-0.03);
    if (e.key === "ArrowRight") pan(0.03);
  });
  new ResizeObserver(draw).observe(canvas);
  return { show, pan, heading, clear() { loadId++; image = null; delete root.dataset.loaded; draw(); } };
}
