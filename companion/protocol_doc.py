"""Render docs/protocol.md and extension/shared/constants.js from `companion.protocol` (the models and
constants are the truth; a test checks that both committed files are what this renders):
`python -m companion protocol-doc --out docs/protocol.md --js extension/shared/constants.js`.
"""

from __future__ import annotations

import json
import typing

from companion import protocol

MODELS = [
    ("Client → server", [protocol.FrameHeader, protocol.ClientControl]),
    ("Server → client", [protocol.Prediction, protocol.ErrorMessage, protocol.Superseded, protocol.Pong]),
    ("Parts of a prediction", [protocol.CountryP, protocol.RegionP, protocol.CellP, protocol.Point]),
    ("HTTP replies", [protocol.Health, protocol.ModelInfo]),
]

INTRO = """\
# Lost & Found companion protocol (version {version})

Generated from `companion/protocol.py` by `python -m companion protocol-doc` (see its `--help`);
do not edit by hand. The pydantic models are the protocol: this page shows their JSON Schemas.

The companion listens on `{host}` (port {port} by default). Every request passes three gates:

1. **Host**: a loopback-bound companion answers only to `Host: 127.0.0.1|localhost|[::1]` (defeats
   DNS rebinding); anything else gets HTTP 403.
2. **Origin**: a request with an `Origin` header must come from a browser extension
   (`chrome-extension://…`, `moz-extension://…`, `safari-web-extension://…`) or from the companion's
   own page (`http://127.0.0.1:PORT`, `http://localhost:PORT`). A foreign page's websocket
   handshake is refused with HTTP 403 (close code {close_policy} server-side); its HTTP requests get 403.
   Clients that send no `Origin` (native programs) pass this gate.
3. **Pairing token**: generated at first start and kept in the user's config dir
   (`$LF_CONFIG_DIR/token`, else platformdirs' `user_config_dir("lostandfound")/token`), printed by
   `python -m companion serve` and shown in the web UI; `--token` or `$LF_TOKEN` override it.
   Websocket: `/ws?token=TOKEN` (browsers cannot set websocket headers). HTTP: `Authorization:
   Bearer TOKEN`, `X-LF-Token: TOKEN` or `?token=TOKEN`. The token is never sent to anyone who did
   not send it: the web UI gets it only when opened as `/?token=TOKEN` (the URL `serve` prints).

A malformed `Host` or `Origin` (`[evil`, a port that is not a number in 0–65535) is refused like a
foreign one. Connections: at most {max_connections} open at once (fewer when the process's file limit is low);
one that has not sent a whole request within {header_timeout:g} s, or idles that long between requests,
is closed, and at the cap the oldest such idle connection is closed to admit a new one. A request
body must arrive within {body_timeout:g} s.

## Websocket `/ws?token=TOKEN`

- A wrong or missing token: the server accepts, sends one `ErrorMessage` with code
  `unauthorized`, then closes with code {close_unauthorized}.
- **Frames**, client → server, one *binary* message each:
  `uint32 big-endian N | N bytes of UTF-8 JSON FrameHeader | image bytes (JPEG, PNG or WebP)`,
  with 1 ≤ N ≤ {max_header}. The server answers every frame with exactly one text message: a
  `Prediction` (with the frame's `round` and `frame` echoed) or an `ErrorMessage` (with `frame` when
  the header could be read), or a `Superseded`. Replies on one connection come in the order of the frames.
- **The newest frame wins**: a frame still waiting for the model when a newer frame of the same
  `round` arrives on its connection is answered `Superseded` (`by`: the newer frame) and skipped: it
  is not run and not pooled. A frame whose inference has begun is always answered. Connections take
  turns at the model, one frame each, first come first served, so one client's burst does not delay
  another's frames. The server reads up to {max_inbox} messages ahead on a connection, then waits for
  its replies to go out (a client that does not read its replies stops being read).
- **Rounds**: the answer pools all frames of the same `round` on this connection so far (the mean of
  their cell log-probabilities; `frames` says how many). A connection remembers its last
  {max_rounds} rounds (least recently used are forgotten). Send `{{"type": "reset", "round": "…"}}` to
  forget one round, or `{{"type": "reset"}}` for all; the server answers `Pong`.
- **Control**, client → server, *text*: a JSON `ClientControl` (`ping` or `reset`); answered by `Pong`.
- **Errors never close the connection** (except `unauthorized` at the start): a malformed header,
  garbage bytes, an undecodable image, an oversized frame or a rate-limited message each get an
  `ErrorMessage` and the next frame is processed normally. The default limits: frames up to
  {max_bytes} bytes, images up to {max_pixels} pixels, {rate:g} messages/s per connection (burst
  {burst}); a message larger than the websocket's maximum message size (frame limit + 64 KiB)
  closes the connection with code {close_too_big} (the server reads and drops the rest of the message, so the
  close frame is not lost to a reset). A client that neither reads nor completes a close is cut off
  {close_timeout:g} s after the server's close frame.
- `latency_ms` is server time from receiving the frame to sending the answer; `point` is the
  probability-weighted centre of the cells near the most likely cell; `cells` are the top cells
  (ids are the feature ids of `GET /v1/model`'s `cells`); `confidence` is `confident` when the top
  country's calibrated p ≥ {confident:g}, `likely` when ≥ {likely:g}, else `unsure` (no country clears the bar).

| ErrorMessage.code | meaning |
|---|---|
| `bad_message` | a binary message shorter than 4 bytes, or a text message that is not a `ClientControl`; over HTTP, a bad query parameter or body |
| `bad_header` | the header length is out of range or runs past the message, or the header JSON is not a valid `FrameHeader` |
| `bad_image` | the image bytes are not a decodable JPEG/PNG/WebP (or are smaller than 16×16) |
| `too_large` | the frame (or an HTTP body) has more bytes, or the image more pixels, than allowed |
| `rate_limited` | more messages per second than allowed on this connection; the message was dropped |
| `unauthorized` | a wrong or missing pairing token (or, over HTTP, a refused Host/Origin) |
| `internal` | a bug; the message says what went wrong |

## HTTP

| method and path | token | body | answer |
|---|---|---|---|
| `GET /v1/health` | no | – | `{{"status": "ok", "protocol": {version}, "model": MODEL_ID}}` |
| `GET /v1/model` | no | – | `{{"model", "backbone", "created", "input", "countries", "regions", "metrics", "cells"}}`; `cells` is a GeoJSON FeatureCollection, properties `{{"id", "country", "name"}}` |
| `POST /v1/predict[?top_k=K]` | yes | the image bytes (any content type), K in 1–{max_top_k} | a `Prediction` (`round`, `frame` null, `frames` 1); errors: 400/401/408/413 with an `ErrorMessage` |
| `GET /[?token=TOKEN]` | no | – | the web UI (drop/paste an image; Play); with the right token the page holds it |
| `POST /v1/play/round` | yes | `{{"player": NAME}}` (optional) | `{{"round", "image", "remaining", "total"}}` |
| `GET /v1/play/image/ROUND` | no | – | the round's image |
| `POST /v1/play/guess` | yes | `{{"round": ROUND, "guesses": [up to {guesses} countries: names, common names such as "usa", or ISO codes, in order]}}` | `{{"truth", "guesses", "model", "score", "model_point", "model_cells"}}` (the model's point and top cells on this image, as in a `Prediction`) |
| `GET /v1/play/scores[?player=NAME]` | no | – | `{{"rounds", "human": {{"top1", "top3", "top5"}}, "model": {{…}}}}` |
| `GET /v1/play/countries` | no | – | `[{{"code", "name"}}]`, for the guess inputs |

Play bodies are JSON of at most {max_json} bytes, read only after the token check; errors are
an `ErrorMessage` with 400/401/404/408/409/413. A guess with unknown or repeated
countries is a 400 naming each of them, with their positions (0-based) in `entries`.

## Example

```python
import json, struct
from websockets.sync.client import connect

header = json.dumps({{"round": "r1", "frame": 0, "heading": 90}}).encode()
with connect("ws://{host}:{port}/ws?token=TOKEN") as ws:
    ws.send(struct.pack(">I", len(header)) + header + open("frame.jpg", "rb").read())
    print(json.loads(ws.recv())["countries"][0])
```

## Messages
"""


def _schema_block(model) -> str:
    schema = model.model_json_schema()
    schema.pop("$defs", None)
    return "```json\n" + json.dumps(schema, indent=2, ensure_ascii=False) + "\n```\n"


def render() -> str:
    p = protocol
    out = [INTRO.format(
        version=p.PROTOCOL_VERSION, close_unauthorized=p.CLOSE_UNAUTHORIZED, max_header=p.MAX_HEADER_BYTES,
        max_rounds=p.MAX_ROUNDS, max_bytes=p.MAX_FRAME_BYTES, max_pixels=p.MAX_PIXELS, rate=p.RATE_PER_S,
        burst=p.RATE_BURST, max_connections=p.MAX_CONNECTIONS, header_timeout=p.HEADER_TIMEOUT,
        body_timeout=p.BODY_TIMEOUT, max_inbox=p.MAX_INBOX, close_timeout=p.CLOSE_TIMEOUT, max_json=p.MAX_JSON_BODY,
        port=p.DEFAULT_PORT, host=p.DEFAULT_HOST, max_top_k=p.MAX_TOP_K, close_policy=p.CLOSE_POLICY,
        close_too_big=p.CLOSE_TOO_BIG, guesses=p.PLAY_GUESSES, confident=p.CONFIDENT_P, likely=p.LIKELY_P,
    )]
    for title, models in MODELS:
        out.append(f"\n### {title}\n")
        for m in models:
            out.append(f"\n#### `{m.__name__}`\n\n")
            out.append(_schema_block(m))
    codes = ", ".join(f"`{c}`" for c in typing.get_args(protocol.ErrorCode))
    out.append(f"\n`ErrorCode`: {codes}.\n")
    return "".join(out)


# the protocol's constants the extension needs, under the names the JS uses
JS_CONSTANTS = ["PROTOCOL_VERSION", "DEFAULT_HOST", "DEFAULT_PORT", "CLOSE_UNAUTHORIZED", "MAX_TOP_K", "DEFAULT_TOP_K",
                "MAX_FRAME_BYTES", "MAX_HEADER_BYTES"]


def message_types() -> dict[str, str]:
    """Every message `type` on the wire, both directions: {"PREDICTION": "prediction", ...}."""
    types = []
    for _, models in MODELS[:2]:
        for m in models:
            field = m.model_fields.get("type")
            if field is not None:
                types += typing.get_args(field.annotation)
    return {t.upper(): t for t in types}


def render_constants() -> str:
    """extension/shared/constants.js: `LF.PROTOCOL`, the constants and message types of protocol.py."""
    values = {name: getattr(protocol, name) for name in JS_CONSTANTS}
    lines = [f"  {k}: {json.dumps(v)}," for k, v in values.items()]
    lines.append(f"  MESSAGES: Object.freeze({json.dumps(message_types())}),")
    lines.append(f"  ERROR_CODES: Object.freeze({json.dumps(list(typing.get_args(protocol.ErrorCode)))}),")
    return (
        "// Generated from companion/protocol.py by `python -m companion protocol-doc`; do not edit by hand.\n"
        "// Loaded before the other scripts (plain script, no modules: content scripts cannot import).\n"
        '"use strict";\n\n'
        "var LF = globalThis.LF || (globalThis.LF = {});\n\n"
        "LF.PROTOCOL = Object.freeze({\n" + "\n".join(lines) + "\n});\n"
    )
