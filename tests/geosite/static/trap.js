// Records any read of __NEXT_DATA__ (it holds the answer, as on the real site). The site's own scripts
// never read it, so every report is someone else peeking: tests assert there are none.
(() => {
  const el = document.getElementById("__NEXT_DATA__");
  const report = (how) => {
    const body = JSON.stringify({ event: "next-data-read", how, page: location.pathname });
    navigator.sendBeacon("/_geosite/log", new Blob([body], { type: "application/json" }));
  };
  for (const prop of ["textContent", "innerHTML", "innerText", "outerHTML", "text", "firstChild", "childNodes"]) {
    let proto = el;
    let desc;
    while (proto && !(desc = Object.getOwnPropertyDescriptor(proto, prop))) proto = Object.getPrototypeOf(proto);
    if (!desc || !desc.get) continue;
    Object.defineProperty(el, prop, { configurable: true, get() { report(prop); return desc.get.call(this); } });
  }
  const wrap = (obj, name, test) => {
    const orig = obj[name];
    obj[name] = function (...args) {
      if (test(String(args[0]))) report(name);
      return orig.apply(this, args);
    };
  };
  wrap(document, "getElementById", (id) => id === "__NEXT_DATA__");
  wrap(document, "querySelector", (s) => s.includes("__NEXT_DATA__"));
  wrap(document, "querySelectorAll", (s) => s.includes("__NEXT_DATA__"));
  Object.defineProperty(window, "__NEXT_DATA__", { configurable: true, get() { report("window.__NEXT_DATA__"); } });
})();
