"""One server's settings (the CLI sets them; every default is the protocol's) and the gates they define.

Any web page the player opens can try ws://127.0.0.1, so every request passes three gates: the
Host header must be a loopback name (defeats DNS rebinding), a browser Origin must be an extension
or the companion's own page, and frames and predictions need the pairing token.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from pydantic import Field

from companion import protocol as P
from runtime.config import Config

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
EXTENSION_SCHEMES = ("chrome-extension", "moz-extension", "safari-web-extension")


# the settings `python -m companion serve` takes as options (the others are fixed at their defaults)
SERVE_OPTIONS = ("host", "port", "rate_limit", "max_frame_bytes", "max_pixels", "max_connections", "header_timeout")


class Settings(Config):
    token: str
    host: str = Field(P.DEFAULT_HOST, description="bind address (loopback by default; anything else exposes the model)")
    port: int = Field(P.DEFAULT_PORT, ge=0, le=65535, description="0 picks a free port")  # set to the bound one
    max_frame_bytes: int = Field(P.MAX_FRAME_BYTES, ge=1, description="bytes a frame or predict body may have")
    max_pixels: int = Field(P.MAX_PIXELS, ge=1, description="pixels an image may have")
    rate_limit: float = Field(P.RATE_PER_S, gt=0, description="messages per second per websocket connection")
    rate_burst: int = P.RATE_BURST
    max_rounds: int = P.MAX_ROUNDS
    top_k: int = P.DEFAULT_TOP_K
    top_cells: int = P.TOP_CELLS
    workers: int = 2                        # decode/preprocess threads (and turns at the model); model runs are serialized
    max_connections: int = Field(P.MAX_CONNECTIONS, ge=1,
                                 description="open connections at most (also kept under a quarter of the fd limit)")
    header_timeout: float = Field(P.HEADER_TIMEOUT, gt=0,
                                  description="seconds a connection may take to send its request, or idle between requests")
    body_timeout: float = P.BODY_TIMEOUT

    def host_ok(self, host_header: str | None) -> bool:
        """A loopback-bound server only answers to loopback names (DNS rebinding defence)."""
        if self.host not in LOOPBACK_NAMES:
            return True
        if not host_header:
            return False
        parts = _split("//" + host_header)
        return parts is not None and parts.hostname in LOOPBACK_NAMES

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin: not a browser page (a native client still needs the token)."""
        if origin is None:
            return True
        parts = _split(origin)
        if parts is None:
            return False
        if parts.scheme in EXTENSION_SCHEMES:
            return True
        return parts.scheme == "http" and parts.hostname in LOOPBACK_NAMES | {self.host} and parts.port == self.port

    def token_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


def _split(url: str):
    """urlsplit, None where the URL is malformed (`[evil`, a port that is not a number or out of range)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises
        return parts
    except ValueError:
        return None
