// Reading the street-view frame: pixels only. Primary path: the panorama's WebGL canvas (readable because
// preserve-drawing-buffer.js kept its buffer). Fallback: a screenshot of the tab with every other element
// hidden, cropped to the panorama by the background (at most 2 screenshots per second).
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

LF.SIG_W = 48;
LF.SIG_H = 27;
LF.MAX_FRAME_WIDTH = 1280;

LF.Capture = class Capture {
  constructor() {
    this.small = document.createElement("canvas");
    this.small.width = LF.SIG_W;
    this.small.height = LF.SIG_H;
    this.smallCtx = this.small.getContext("2d", { willReadFrequently: true });
    this.work = document.createElement("canvas");
    this.styleAdded = false;
  }

  // A thumbnail's grey levels: cheap to compare (has it rendered? is it still changing? did the player pan?)
  signature(source) {
    this.smallCtx.clearRect(0, 0, LF.SIG_W, LF.SIG_H);
    this.smallCtx.drawImage(source, 0, 0, LF.SIG_W, LF.SIG_H);
    const px = this.smallCtx.getImageData(0, 0, LF.SIG_W, LF.SIG_H).data;   // throws on a tainted canvas
    const grey = new Float32Array(LF.SIG_W * LF.SIG_H);
    let sum = 0;
    for (let i = 0; i < grey.length; i++) {
      const a = px[4 * i + 3] / 255;   // a cleared WebGL canvas is transparent: count it as black
      grey[i] = a * (0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]);
      sum += grey[i];
    }
    const mean = sum / grey.length;
    let varSum = 0;
    for (const g of grey) varSum += (g - mean) ** 2;
    return { grey, std: Math.sqrt(varSum / grey.length) };
  }

  static blank(sig) {
    return sig.std < 4;   // one flat colour: not rendered yet, or a black frame
  }

  static diff(a, b) {
    let d = 0;
    for (let i = 0; i < a.grey.length; i++) d += Math.abs(a.grey[i] - b.grey[i]);
    return d / a.grey.length;
  }

  // The canvas's current frame as JPEG bytes (base64), at most MAX_FRAME_WIDTH wide.
  async encodeCanvas(canvas) {
    const scale = Math.min(1, LF.MAX_FRAME_WIDTH / canvas.width);
    this.work.width = Math.max(16, Math.round(canvas.width * scale));
    this.work.height = Math.max(16, Math.round(canvas.height * scale));
    this.work.getContext("2d").drawImage(canvas, 0, 0, this.work.width, this.work.height);
    const blob = await new Promise((resolve) => this.work.toBlob(resolve, "image/jpeg", 0.92));
    return { image: await LF.blobToBase64(blob), width: this.work.width, height: this.work.height };
  }

  // Fallback: hide everything but the panorama canvas, let the background screenshot and crop the tab.
  async captureTab(canvas) {
    if (!this.styleAdded) {
      const style = document.createElement("style");
      style.textContent = `html.lf-capturing body * { visibility: hidden !important; }
        html.lf-capturing #lf-overlay-host { display: none !important; }
        html.lf-capturing canvas[data-lf-panorama] { visibility: visible !important; }`;
      document.documentElement.appendChild(style);
      this.styleAdded = true;
    }
    canvas.dataset.lfPanorama = "";
    const root = document.documentElement;
    root.classList.add("lf-capturing");
    try {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));   // repainted without the UI
      const r = canvas.getBoundingClientRect();
      const rect = { x: r.left, y: r.top, width: r.width, height: r.height, viewportWidth: window.innerWidth };
      const shot = await LF.api.runtime.sendMessage({ type: LF.MSG.CAPTURE_TAB, rect });
      if (!shot || shot.error) throw new Error(shot?.error || "no screenshot");
      return shot;
    } finally {
      root.classList.remove("lf-capturing");
    }
  }

  async signatureOfBase64(b64) {
    const bitmap = await createImageBitmap(new Blob([LF.base64ToBytes(b64)]));
    return this.signature(bitmap);
  }
};
