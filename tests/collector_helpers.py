"""Shared by the collector's browser tests: a fast config, pair checks against the site's answers,
and finding the processes a run started."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from dataprep.collect.config import CollectConfig

VIEWPORT = (480, 300)  # small screenshots: the tests' cost is mostly screenshots
CREDENTIALS = ("test@example.com", "secret")


def fast_config(site_url: str, out: Path, **changes) -> CollectConfig:
    changes.setdefault("max_minutes", 3.0)  # a safety net: a broken run fails its test instead of hanging it
    cfg = CollectConfig(base_url=site_url, out=out, workers=2, viewport=VIEWPORT, **changes)
    t = cfg.timeouts
    t.action_s, t.render_s, t.black_s, t.br_round_s = 20.0, 12.0, 2.0, 20.0
    t.watchdog_s, t.backoff_s, t.backoff_max_s = 45.0, 0.3, 2.0
    return cfg


def pairs(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}


def fingerprints(folder: Path) -> dict[str, str]:
    """sha256 of every saved pair's two files (a pair is saved once its JSON exists)."""
    files = [f for j in sorted(Path(folder).glob("*.json")) for f in (j, j.with_suffix(".png"))]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _visible_part(image: Image.Image, aspect: float) -> Image.Image:
    """What the panorama shows of an image: 'cover' crops the longer side around the centre."""
    w, h = image.size
    if w / h < aspect:
        keep = round(w / aspect)
        return image.crop((0, (h - keep) // 2, w, (h - keep) // 2 + keep))
    keep = round(h * aspect)
    return image.crop(((w - keep) // 2, 0, (w - keep) // 2 + keep, h))


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((32, 20), Image.BILINEAR), dtype=np.float32)


def best_matching_place(png: Path, places) -> tuple[object, float]:
    """The site place whose image the screenshot shows (smallest pixel difference), and that difference."""
    with Image.open(png) as shot:
        aspect = shot.size[0] / shot.size[1]
        seen = _thumb(shot)
    scored = []
    for place in places:
        with Image.open(place.path) as im:
            scored.append((float(np.abs(_thumb(_visible_part(im, aspect)) - seen).mean()), place.id, place))
    diff, _, place = min(scored, key=lambda s: (s[0], s[1]))
    return place, diff


def check_pairs_against_site(folder: Path, site, mode: str = "singleplayer") -> int:
    """Every pair shows its round's panorama and carries that round's answer; returns the count."""
    found = pairs(folder)
    for pid, meta in found.items():
        game_id, round_no = pid.rsplit("_", 1)
        assert meta["id"] == pid and meta["game_id"] == game_id and meta["round"] == int(round_no)
        assert meta["mode"] == mode and meta["source"] == "127.0.0.1" and meta["timestamp"]
        place = site.games[game_id].places[int(round_no) - 1]
        if mode == "singleplayer":
            assert (meta["lat"], meta["lng"]) == (round(place.lat, 5), round(place.lng, 5)), pid
            assert meta["location"] == f"127.0.0.1:{place.lat:.5f},{place.lng:.5f}"
        else:
            assert (meta["country"], meta["country_name"]) == (place.country, place.country_name), pid
            assert "lat" not in meta
        shown, diff = best_matching_place(Path(folder) / f"{pid}.png", site.places)
        assert shown.id == place.id and diff < 25, f"{pid} shows {shown.id}, not its round's {place.id} ({diff:.1f})"
    return len(found)


def descendants(pid: int) -> list[int]:
    from dataprep.collect.supervisor import descendants as below

    return below(pid)


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def browser_pids(root: int = 0) -> list[int]:
    """Chromium browser processes (not their renderers/GPU helpers) started below `root` (default: us)."""
    out = []
    for pid in descendants(root or os.getpid()):
        args = cmdline(pid)
        if args and os.path.basename(args[0]) in ("chromium", "chrome") and not any(a.startswith("--type=") for a in args):
            out.append(pid)
    return out


def worker_pids(root: int = 0) -> list[int]:
    return [p for p in descendants(root or os.getpid()) if any("spawn_main" in a for a in cmdline(p))]


ROOT = Path(__file__).resolve().parent.parent
