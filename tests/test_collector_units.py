"""The collector's parts that need no browser: pair store, claims, run lock, frame checks, parsing, config."""

from __future__ import annotations

import errno
import io
import json
import multiprocessing as mp
import os
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dataprep.collect.config import CollectConfig
from dataprep.collect.frames import Frame
from dataprep.collect.site import ResultUnreadable, parse_country, parse_latlng, parse_retry_after, parse_round
from dataprep.collect.store import Claims, PairStore, RunLock, write_atomic
from dataprep.collect.worker import Shared, Worker
from dataprep.ingest import ingest
from runtime.cli import BadInput, Failed


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


def test_write_atomic_makes_a_private_file_private_from_its_first_byte(tmp_path, monkeypatch):
    path = tmp_path / "storage_state.json"
    leftover = tmp_path / f".storage_state.json.tmp-{os.getpid()}"  # a killed earlier process of our pid
    leftover.write_bytes(b"old")
    leftover.chmod(0o644)
    modes = []
    real_replace = os.replace
    monkeypatch.setattr("dataprep.collect.store.os.replace",
                        lambda a, b: (modes.append(os.stat(a).st_mode & 0o777), real_replace(a, b)))
    write_atomic(path, b'{"cookies": []}', mode=0o600)
    assert modes == [0o600] and path.stat().st_mode & 0o777 == 0o600 and path.read_bytes() == b'{"cookies": []}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["storage_state.json"]


def _worker(tmp_path, max_rounds=-1, **timeouts) -> tuple[Worker, list]:
    """A worker outside any process or browser: its events land in a list."""
    events = []
    cfg = CollectConfig(base_url="http://127.0.0.1:1", out=tmp_path)
    for name, value in timeouts.items():
        setattr(cfg.timeouts, name, value)
    shared = Shared(stop=SimpleNamespace(value=0), saved=SimpleNamespace(value=0),
                    cooldown_until=SimpleNamespace(value=0.0), max_rounds=max_rounds,
                    lock_path=str(tmp_path / "shared.lock"))
    return Worker(0, cfg, None, SimpleNamespace(send=events.append), shared), events


def test_a_failed_save_gives_its_budget_slot_back_and_the_worker_goes_on(tmp_path, monkeypatch):
    worker, events = _worker(tmp_path, max_rounds=1)
    calls = []

    def fsync(fd):  # the PNG is written, then the disk fills up under its JSON
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dataprep.collect.store.os.fsync", fsync)
    frame = Frame.from_png(png(noise(7)))
    worker.save("g", 1, frame, {"lat": 1.0, "lng": 2.0, "heading": None})
    assert events == [(0, "error", "save_failed", "g_1: [Errno 28] No space left on device"), (0, "round", "unsaved")]
    assert worker.shared.saved.value == 0 and not worker.stopping  # the slot is free again
    assert list(worker.cfg.pairs_dir.iterdir()) == []  # no temporary file, no image without its JSON
    monkeypatch.undo()
    worker.save("g", 2, frame, {"lat": 1.0, "lng": 2.0, "heading": None})  # space again: the slot is used
    assert events[-1] == (0, "round", "saved") and worker.shared.saved.value == 1
    assert PairStore(worker.cfg.pairs_dir).has("g", 2)


def test_parse_retry_after_reads_seconds_and_dates():
    assert parse_retry_after("120") == 120.0 and parse_retry_after(" 0 ") == 0.0
    assert 85 < parse_retry_after(format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)) <= 90
    assert parse_retry_after(format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("-5") is None


def test_back_off_waits_at_least_the_sites_retry_after_but_within_bounds(tmp_path):
    worker, _ = _worker(tmp_path, backoff_s=1.0, backoff_max_s=60.0)
    cooldown = worker.shared.cooldown_until

    def waits(retry_after):
        cooldown.value = 0.0
        start = time.time()
        worker.back_off(retry_after)
        return cooldown.value - start

    assert 0.75 <= waits(None) <= 1.01  # first hit, no header: backoff_s with jitter
    assert 30 <= waits(30) <= 30.01  # the site's word over our 2 s
    assert 3 <= waits(1) <= 4.01  # a shorter Retry-After does not cut the exponential backoff
    assert 60 <= waits(86400) <= 60.01  # bounded


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
        with pytest.raises(Failed, match="being collected into"):
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
    with pytest.raises(BadInput, match="render_seconds"):
        CollectConfig.from_json(path)
    with pytest.raises(BadInput, match="mode 'duels' is not configured"):
        CollectConfig.from_dict({"mode": "duels"})
    with pytest.raises(BadInput, match="selectors.panorama"):
        CollectConfig.from_dict({"selectors": {"panorama": 3}})


def test_cli_builds_the_config_from_json_and_flags(tmp_path, capsys):
    from dataprep.cli import main as dataprep_main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"mode": "br-countries", "timeouts": {"render_s": 9}}))
    assert dataprep_main(["collect", "--config", str(cfg), "--workers", "3", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["mode"], printed["workers"], printed["timeouts"]["render_s"]) == ("br-countries", 3, 9)
    assert dataprep_main(["collect", "--workers", "0", "--print-config"]) == 2   # bad input
    assert "--workers: Input should be greater than or equal to 1" in capsys.readouterr().err
    # an option not given leaves the file's value; one given overrides it
    assert dataprep_main(["collect", "--config", str(cfg), "--no-headless", "--max-rounds", "4", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["mode"], printed["headless"], printed["max_rounds"]) == ("br-countries", False, 4)
    assert dataprep_main(["collect", "--config", str(tmp_path / "missing.json"), "--print-config"]) == 2
    assert "not found" in capsys.readouterr().err
