"""Play through its HTTP API on a real server, then `baseline-report` on the scores it kept."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from companion_fixtures import FIXTURE_IMAGES
from paths import ROOT

from companion.world import world


def truth_of(image_bytes: bytes) -> tuple[str, str]:
    path = next(p for p in FIXTURE_IMAGES if p.read_bytes() == image_bytes)
    meta = json.loads(path.with_suffix(".json").read_text())
    return world().country_at(meta["lat"], meta["lng"])


def test_play_flow_and_baseline_report(main_server):
    base, tok = main_server.http, {"X-LF-Token": main_server.token}
    countries = httpx.get(f"{base}/v1/play/countries").json()
    names = {c["code"]: c["name"] for c in countries}
    assert len(names) > 150 and names["FR"] == "France"

    assert httpx.post(f"{base}/v1/play/round", json={"player": "ann"}).status_code == 401
    played, human_top1 = [], 0
    for i in range(3):
        r = httpx.post(f"{base}/v1/play/round", json={"player": "ann"}, headers=tok)
        assert r.status_code == 200, r.text
        rnd = r.json()
        assert rnd["total"] == len(FIXTURE_IMAGES) and rnd["remaining"] == len(FIXTURE_IMAGES) - 1 - i
        img = httpx.get(base + rnd["image"])
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        code, name = truth_of(img.content)
        assert img.content not in played  # a player is not shown an image twice while fresh ones remain
        played.append(img.content)

        bad = httpx.post(f"{base}/v1/play/guess", json={"round": rnd["round"], "guesses": ["Atlantis"]}, headers=tok)
        assert bad.status_code == 400 and "Atlantis" in bad.json()["message"]
        dup = httpx.post(f"{base}/v1/play/guess", json={"round": rnd["round"], "guesses": ["FR", "france"]}, headers=tok)
        assert dup.status_code == 400 and "twice" in dup.json()["message"]

        others = [c for c in ("FR", "DE", "IT", "ES", "PL", "SE") if c != code]
        guesses = ([name] + others[:4]) if i == 0 else (others[:4] + [code.lower()]) if i == 1 else others[:5]
        human_top1 += i == 0
        res = httpx.post(f"{base}/v1/play/guess", json={"round": rnd["round"], "guesses": guesses}, headers=tok)
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["truth"]["code"] == code
        assert [g["correct"] for g in body["guesses"]] == [g.upper() == code or g == name for g in guesses]
        assert len(body["model"]) == 5 and sum(m["correct"] for m in body["model"]) <= 1
        assert body["score"]["rounds"] == i + 1
        again = httpx.post(f"{base}/v1/play/guess", json={"round": rnd["round"], "guesses": ["FR"]}, headers=tok)
        assert again.status_code == 409

    scores = httpx.get(f"{base}/v1/play/scores", params={"player": "ann"}).json()
    assert scores["rounds"] == 3
    assert scores["human"] == pytest.approx({"top1": 1 / 3, "top3": 1 / 3, "top5": 2 / 3})

    report = subprocess.run(
        [sys.executable, "-m", "companion", "baseline-report", "--model", str(main_server.bundle),
         "--db", str(main_server.home / "data" / "play.sqlite"), "--player", "ann", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    rep = json.loads(report.stdout)
    assert rep["images"] == 3 and rep["players"] == ["ann"]
    assert rep["human"] == scores["human"]
    assert rep["model_scores"] == pytest.approx(scores["model"])  # same model, same images, same answers
    text = subprocess.run(
        [sys.executable, "-m", "companion", "baseline-report", "--model", str(main_server.bundle),
         "--db", str(main_server.home / "data" / "play.sqlite")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "human" in text and "model" in text and "top-5" in text


def test_unknown_round(main_server):
    r = httpx.post(f"{main_server.http}/v1/play/guess", json={"round": "nope", "guesses": ["FR"]},
                   headers={"X-LF-Token": main_server.token})
    assert r.status_code == 404
    assert httpx.get(f"{main_server.http}/v1/play/image/nope").status_code == 404


def test_a_name_shared_by_a_dependency_means_the_country(main_server):
    """Natural Earth calls Tokelau "New Zealand": guessing "new zealand" must mean NZ, whatever the draw."""
    from companion_fixtures import _main_bundle_path

    from companion.engine import Engine
    from companion.play import Play

    play = Play(Engine(_main_bundle_path()), FIXTURE_IMAGES[0].parent, db=main_server.home / "names.sqlite")
    assert play.country_code("new zealand") == "NZ" and play.country_code("TK") == "TK"
    assert play.country_code("France") == "FR" and play.country_code("atlantis") is None
