"""Where the companion keeps its state, and the pairing token.

The token is generated at first start and kept in the user's config dir (mode 0600); `--token` or
`LF_TOKEN` override it. `LF_CONFIG_DIR` / `LF_DATA_DIR` move the config and data dirs (tests use
them so they never touch the real home).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import platformdirs

APP = "lostandfound"
DEFAULT_BUNDLE = Path(__file__).resolve().parent / "models" / "default"  # built by `make model`


def config_dir() -> Path:
    return Path(os.environ.get("LF_CONFIG_DIR") or platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    return Path(os.environ.get("LF_DATA_DIR") or platformdirs.user_data_dir(APP))


def pairing_token(explicit: str | None = None) -> str:
    """The token from --token, else LF_TOKEN, else the saved one (created on first use)."""
    token = explicit or os.environ.get("LF_TOKEN")
    if token:
        return token
    path = config_dir() / "token"
    if path.is_file():
        saved = path.read_text(encoding="utf-8").strip()
        if saved:
            return saved
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    # create with 0600 from the start: the token must not be readable by other users, even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token
