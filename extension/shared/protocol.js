// The companion's websocket protocol, client side (the server's pydantic models in companion/protocol.py
// define it). A frame is: uint32 big-endian header length | UTF-8 JSON FrameHeader | image bytes.
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

// Only these fields leave the browser with the image: ids, heading and how many countries to show,
// nothing from the game.
LF.frameHeader = function frameHeader(round, frame, heading, topK) {
  const header = { v: LF.PROTOCOL.PROTOCOL_VERSION, round: String(round), frame };
  if (Number.isFinite(heading)) header.heading = ((heading % 360) + 360) % 360;
  if (Number.isInteger(topK)) header.top_k = topK;
  return header;
};

LF.encodeFrame = function encodeFrame(header, imageBytes) {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length + imageBytes.length);
  new DataView(out.buffer).setUint32(0, json.length, false);
  out.set(json, 4);
  out.set(imageBytes, 4 + json.length);
  return out;
};

// ws://host:port/ws → http://host:port (where GET /v1/model and /v1/health live)
LF.httpBase = function httpBase(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.origin;
};

// The extension's own messages between its content scripts and the background (browser runtime messages,
// never on the wire). A prediction or error is forwarded to its tab under the protocol's own type.
LF.MSG = Object.freeze({
  HELLO: "hello", BYE: "bye", FRAME: "frame", CAPTURE_TAB: "capture-tab", OPEN_OPTIONS: "open-options",
  STATUS: "status", RESENT: "resent", SHAPES: "shapes", TOGGLE_OVERLAY: "toggle-overlay",
  PREDICTION: LF.PROTOCOL.MESSAGES.PREDICTION, ERROR: LF.PROTOCOL.MESSAGES.ERROR,
});

LF.base64ToBytes = function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};

LF.flagEmoji = function flagEmoji(code) {
  if (!/^[A-Za-z]{2}$/.test(code || "")) return "🏳️";
  return String.fromCodePoint(...[...code.toUpperCase()].map((c) => 0x1f1e6 + c.charCodeAt(0) - 65));
};

// Through FileReader, not blob.arrayBuffer(): in a Firefox content script the canvas's blob belongs to the
// page, and typed-array methods on its buffer throw "Permission denied to access property constructor".
// FileReader is in workers too, so the background's screenshot crops use the same code.
LF.blobToBase64 = function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
};
