"""Play: the human baseline. A player sees an image, types five countries in order, then sees the
truth and the model's answer. Every guess is kept in SQLite, so `baseline-report` can put human and
model top-1/3/5 side by side on exactly the same images.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from companion import protocol as P
from companion.country_names import CountryNames
from companion.scores import Scores, default_db
from companion.world import world
from runtime.records import image_path, read_manifest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
GUESSES = P.PLAY_GUESSES


@dataclass(frozen=True)
class PlayImage:
    id: str
    path: Path
    lat: float
    lng: float
    country: str        # ISO alpha-2
    country_name: str


def load_images(source: Path) -> list[PlayImage]:
    """Images with their truth: a dataprep manifest (its test split) or a folder of `<id>.json` + image."""
    source = Path(source)
    if source.is_file():
        rows = list(read_manifest(source))
        if any(r.split for r in rows):
            rows = [r for r in rows if r.split == "test"]
        found = [(r.id, image_path(r, source), r.lat, r.lng, r.country, r.country_name) for r in rows]
    elif source.is_dir():
        found = []
        for meta in sorted(source.glob("*.json")):
            img = next((meta.with_suffix(s) for s in IMAGE_SUFFIXES if meta.with_suffix(s).is_file()), None)
            if img is None:
                continue
            d = json.loads(meta.read_text(encoding="utf-8"))
            found.append((d.get("id", meta.stem), img, d["lat"], d["lng"], d.get("country"), d.get("country_name")))
    else:
        raise FileNotFoundError(f"no Play images at {source}")
    images = []
    for id_, path, lat, lng, code, name in found:
        if not code:
            hit = world().country_at(lat, lng)
            if hit is None:
                continue  # at sea on the simplified outline: no truth to score against
            code, name = hit
        images.append(PlayImage(id_, Path(path), float(lat), float(lng), code, name or world().names.get(code, code)))
    return images


def top_k_hits(rows: list[dict], key: str) -> dict[str, float]:
    n = len(rows)
    return {f"top{k}": (sum(r["truth"] in r[key][:k] for r in rows) / n if n else 0.0) for k in (1, 3, 5)}


def score_summary(rows: list[dict]) -> dict:
    """A player's running score: rounds played, human and model top-1/3/5."""
    return {"rounds": len(rows), "human": top_k_hits(rows, "guesses"), "model": top_k_hits(rows, "model_guesses")}


class Play:
    def __init__(self, engine, source: Path, db: Path | None = None):
        self.engine = engine
        self.source = Path(source)
        self.images = {im.id: im for im in load_images(self.source)}
        self.scores = Scores(Path(db) if db else default_db())
        self.names = dict(world().names) | {c.code: c.name for c in engine.meta.countries}
        self.country_code = CountryNames(self.names).code

    def new_round(self, player: str) -> dict:
        if not self.images:
            raise LookupError(f"no Play images in {self.source}")
        seen = self.scores.guessed_images(player)
        fresh = [i for i in self.images if i not in seen] or list(self.images)
        # a country first, then one of its images: the test split is half US, a game is not
        by_country: dict[str, list[str]] = {}
        for i in fresh:
            by_country.setdefault(self.images[i].country, []).append(i)
        image = random.choice(by_country[random.choice(sorted(by_country))])
        round_id = secrets.token_urlsafe(9)
        self.scores.add_round(round_id, image, player)
        return {"round": round_id, "image": f"/v1/play/image/{round_id}", "remaining": len(fresh) - 1, "total": len(self.images)}

    def image_of(self, round_id: str) -> PlayImage | None:
        found = self.scores.round_of(round_id)
        return self.images.get(found[0]) if found else None

    def model_prediction(self, image: PlayImage):
        return self.engine.prediction(self.engine.frame_log_probs(image.path.read_bytes()), top_k=GUESSES)

    def guess(self, round_id: str, guesses: list[str], model_guesses: list[str]) -> dict:
        image_id, player = self.scores.round_of(round_id)
        image = self.images[image_id]
        self.scores.add_guess(round_id, player, image.id, str(image.path), image.country, guesses,
                              self.engine.model_id, model_guesses)
        rows = self.scores.rows(player)

        def marked(codes: list[str]) -> list[dict]:
            return [{"code": g, "name": self.names.get(g, g), "correct": g == image.country} for g in codes]

        return {
            "truth": {"code": image.country, "name": image.country_name, "lat": image.lat, "lng": image.lng},
            "guesses": marked(guesses),
            "model": marked(model_guesses),
            "score": score_summary(rows),
        }


def baseline_report(engine, db: Path | None = None, player: str | None = None) -> dict:
    """Human vs model top-1/3/5 on the images the humans played, the model re-run now where the
    image is still there (so a new model is compared on the same images)."""
    rows = Scores(Path(db) if db else default_db()).rows(player)
    for r in rows:
        path = Path(r["image_path"])
        if path.is_file():
            pred = engine.prediction(engine.frame_log_probs(path.read_bytes()), top_k=GUESSES)
            r["model_guesses"], r["model"] = [c.code for c in pred.countries], engine.model_id
    return {
        "images": len(rows),
        "players": sorted({r["player"] for r in rows}),
        "model": engine.model_id,
        "human": top_k_hits(rows, "guesses"),
        "model_scores": top_k_hits(rows, "model_guesses"),
    }
