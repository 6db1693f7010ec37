"""The collector's parts that need no browser: pair store, claims, run lock, frame checks, parsing, config."""

from __future__ import annotations

import io
import json
import multiprocessing as mp

import numpy as np
import pytest
from PIL import Image

from dataprep.collect.config import CollectConfig
from dataprep.collect.frames import Frame
from dataprep.collect.site import ResultUnreadable, parse_country, parse_latlng, parse_round
from dataprep.collect.store import Claims, PairStore, RunLock
from dataprep.ingest import ingest


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def noise(seed: int, shape=(90, 160, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape)


def test_saved_pairs_are_ingestable_and_json_comes_last(tmp_path, monkeypatch):
    store = PairStore(tmp_path)
    order = []
    real_replace = __import__("os").replace
    monkeypatch.setattr("dataprep.collect.store.os.replace", lambda a, b: (order.append(str(b)), real_replace(a, b)))
    store.save("g1", 1, png(noise(1)), {"lat": 48.8566, "lng": 2.3522, "source": "test", "location": "test:1"})
    store.save("g1", 2, png(noise(2)), {"country": "FR", "country_name": "France", "source": "test"})
    assert [p.rsplit("/", 1)[1] for p in order] == ["g1_1.png", "g1_1.json", "g1_2.png", "g1_2.json"]
    assert store.has("g1", 1) and store.has("g1", 2) and not store.has("g1", 3)
    samples, drops = ingest([tmp_path])
    assert [(s.id, s.lat, s.lng, s.location) for s in samples] == [("g1_1", 48.8566, 2.3522, "test:1")]
    assert [d.reason for d in drops] == ["country-only record"]


def test_clean_removes_what_a_kill_left_and_keeps_saved_pairs(tmp_path):
    store = PairStore(tmp_path)
    store.save("g", 1, png(noise(3)), {"lat": 1.0, "lng": 2.0})
    before = (tmp_path / "g_1.png").read_bytes(), (tmp_path / "g_1.json").read_bytes()
    (tmp_path / "g_2.png").write_bytes(png(noise(4)))  # killed between the PNG and its JSON
    (tmp_path / ".g_3.png.tmp-123").write_bytes(b"half")  # killed while writing
    assert store.clean() == {"temp_files": 1, "orphan_images": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_1.json", "g_1.png"]
    assert ((tmp_path / "g_1.png").read_bytes(), (tmp_path / "g_1.json").read_bytes()) == before
    assert store.count() == 1


def _claim(folder, game_id, n, results):
    results.put(Claims(folder).claim(game_id, f"process {n}"))


def test_claims_let_exactly_one_of_many_processes_into_a_game(tmp_path):
    ctx = mp.get_context("fork")  # cheap to start; the claim is a plain O_EXCL file either way
    results = ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(tmp_path, "GAME", n, results)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    won = [results.get(timeout=5) for _ in procs]
    assert sorted(won) == [False, False, False, True]
    claims = Claims(tmp_path)
    assert claims.owner("GAME").startswith("process ")
    assert claims.clear() == 1 and claims.claim("GAME", "later run")
    with pytest.raises(ValueError):
        claims.claim("../x", "evil")


def test_run_lock_refuses_a_second_run_on_the_same_folder(tmp_path):
    with RunLock(tmp_path / "state" / "run.lock"):
        with pytest.raises(RuntimeError, match="being collected into"):
            with RunLock(tmp_path / "state" / "run.lock"):
                pass
    with RunLock(tmp_path / "state" / "run.lock"):  # released: usable again
        pass


def test_frame_checks_tell_blank_black_and_settled_apart():
    picture = Frame.from_png(png(noise(5)))
    loading = Frame.from_png(png(np.full((90, 160, 3), 34)))  # the panorama's grey background
    black = Frame.from_png(png(np.zeros((90, 160, 3))))
    assert not picture.is_blank(6.0) and not picture.is_black(6.0)
    assert loading.is_blank(6.0) and not loading.is_black(6.0)
    assert black.is_blank(6.0) and black.is_black(6.0)
    assert picture.differs(Frame.from_png(picture.png)) == 0.0
    assert picture.differs(Frame.from_png(png(noise(6)))) > 20


@pytest.mark.parametrize(
    "text,expected",
    [("Correct location: 48.85660, 2.35220", (48.8566, 2.3522)), ("-33.9, -70.6", (-33.9, -70.6))],
)
def test_parse_latlng(text, expected):
    assert parse_latlng(text) == expected


@pytest.mark.parametrize("text", ["Correct location: unknown", "Correct location: 91.0, 2.0"])
def test_parse_latlng_refuses_garbage(text):
    with pytest.raises(ResultUnreadable):
        parse_latlng(text)


def test_parse_country_and_round():
    assert parse_country("Bosnia and Herzegovina (ba)") == ("Bosnia and Herzegovina", "BA")
    assert parse_round("Round\n3 / 5") == (3, 5)
    with pytest.raises(ResultUnreadable):
        parse_country("France")
    with pytest.raises(ResultUnreadable):
        parse_round("Round")


def test_config_round_trips_through_json_and_refuses_typos(tmp_path):
    cfg = CollectConfig(base_url="http://127.0.0.1:1", workers=3, max_rounds=7)
    cfg.timeouts.render_s = 3.5
    cfg.modes["singleplayer"].steps = ["Play now", "World"]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    back = CollectConfig.from_json(path)
    assert back == cfg
    assert back.source_name == "127.0.0.1" and back.pairs_dir == back.out / "pairs"
    path.write_text(json.dumps({"timeouts": {"render_seconds": 3}}))
    with pytest.raises(ValueError, match="render_seconds"):
        CollectConfig.from_json(path)
    with pytest.raises(ValueError, match="mode"):
        CollectConfig(mode="duels").validate()


def test_cli_builds_the_config_from_json_and_flags(tmp_path, capsys):
    from dataprep.cli import main as dataprep_main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"mode": "br-countries", "timeouts": {"render_s": 9}}))
    assert dataprep_main(["collect", "--config", str(cfg), "--workers", "3", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["mode"], printed["workers"], printed["timeouts"]["render_s"]) == ("br-countries", 3, 9)
    assert dataprep_main(["collect", "--workers", "0", "--print-config"]) == 1
    assert "workers must be >= 1" in capsys.readouterr().err
