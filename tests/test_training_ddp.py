"""Training under `torchrun --nproc_per_node 2` (DDP, gloo on CPU): a few fine-tuning steps, and
every rank ends with the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from paths import ROOT
from training_fixtures import TINY_SIZE

pytestmark = pytest.mark.slow  # two torch processes: `make test`, not the edit loop


def test_torchrun_two_cpu_ranks_agree(tiny_manifest, tmp_path):
    cfg = {"manifest": str(tiny_manifest), "backbone": "tf_efficientnet_lite0", "size": TINY_SIZE,
           "frozen": False, "epochs": 1, "max_steps": 3, "batch_size": 4, "wandb": "disabled",
           "augment": "mild", "out": str(tmp_path / "run")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # own session: on a timeout the workers die with torchrun instead of lingering in the rendezvous
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "training", "train", "--config", str(tmp_path / "cfg.json")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    ranks = json.loads((tmp_path / "run" / "ranks.json").read_text())
    assert ranks["world"] == 2
    assert ranks["fingerprints"][0] == ranks["fingerprints"][1]
    assert (tmp_path / "run" / "best.pt").is_file()
