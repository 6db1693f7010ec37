"""Weights & Biases logging: offline by default (no account needed; `wandb sync` uploads later)."""

from __future__ import annotations

import os
from pathlib import Path


class Tracker:
    def __init__(self, cfg, out: Path, enabled: bool = True, job: str = "train"):
        self.run = None
        if not enabled or cfg.wandb == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        folder = Path("work/wandb").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project="lostandfound", mode=cfg.wandb, dir=str(folder), job_type=job,
                              name=f"{job}-{Path(out).name}", config=cfg.to_dict(), reinit="finish_previous")

    def log(self, row: dict) -> None:
        if self.run:
            self.run.log({k: v for k, v in row.items() if isinstance(v, int | float)})

    def images(self, paths: dict[str, Path]) -> None:
        if self.run:
            import wandb

            self.run.log({k: wandb.Image(str(p)) for k, p in paths.items()})

    def finish(self, summary: dict | None = None) -> None:
        if self.run:
            for k, v in (summary or {}).items():
                if isinstance(v, int | float | str):
                    self.run.summary[k] = v
            self.run.finish()
            self.run = None
