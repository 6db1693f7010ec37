// Generated from companion/protocol.py by `python -m companion protocol-doc`; do not edit by hand.
// Loaded before the other scripts (plain script, no modules: content scripts cannot import).
"use strict";

var LF = globalThis.LF || (globalThis.LF = {});

LF.PROTOCOL = Object.freeze({
  PROTOCOL_VERSION: 1,
  DEFAULT_HOST: "127.0.0.1",
  DEFAULT_PORT: 8765,
  CLOSE_UNAUTHORIZED: 4401,
  MAX_TOP_K: 50,
  DEFAULT_TOP_K: 5,
  MAX_FRAME_BYTES: 8388608,
  MAX_HEADER_BYTES: 4096,
  MESSAGES: Object.freeze({"PING": "ping", "RESET": "reset", "PREDICTION": "prediction", "ERROR": "error", "SUPERSEDED": "superseded", "PONG": "pong"}),
  ERROR_CODES: Object.freeze(["bad_message", "bad_header", "bad_image", "too_large", "rate_limited", "unauthorized", "internal"]),
});
