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
