// MAIN world, document_start: before the page creates its street-view WebGL context, make sure that
// context keeps its drawing buffer, so the frame can still be read after the browser has composited it.
// It changes one context attribute and reads nothing of the page.
(() => {
  const original = HTMLCanvasElement.prototype.getContext;
  const WEBGL = new Set(["webgl", "webgl2", "experimental-webgl"]);
  function getContext(type, attributes) {
    if (WEBGL.has(type)) {
      attributes = Object.assign({}, attributes, { preserveDrawingBuffer: true });
    }
    return original.call(this, type, attributes);
  }
  Object.defineProperty(getContext, "name", { value: "getContext" });
  HTMLCanvasElement.prototype.getContext = getContext;
})();
