"""Checkpoints: `last.pt` (resume) and `best.pt` (the run's result), what may change on resume, and
loading a run back as a full pixels → logits model."""

from __future__ import annotations

from pathlib import Path

import torch

from training.config import TrainConfig
from training.models import GeoModel, build_model


def finished(state: dict, cfg: TrainConfig) -> bool:
    """Early-stopped or out of steps: checked before each epoch, so resuming a finished run trains nothing."""
    stalled = state["best_epoch"] >= 0 and state["epoch"] - state["best_epoch"] >= cfg.patience
    return stalled or bool(cfg.max_steps and state["step"] >= cfg.max_steps)


# Settings that may change between a run and its resumption without changing what is trained.
RESUMABLE_CHANGES = {"resume", "epochs", "patience", "max_steps", "wandb", "out", "features_dir", "stages_dir"}


# Settings a frozen-feature head never reads.
FINETUNE_ONLY = {"backbone_lr", "augment", "cut", "views", "stages_dir", "init_head"}


def config_changes(saved: dict, current: dict) -> list[str]:
    ignored = RESUMABLE_CHANGES | (FINETUNE_ONLY if saved.get("frozen") and current.get("frozen") else set())
    return sorted(k for k in saved.keys() | current.keys() if k not in ignored and saved.get(k) != current.get(k))


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_trained(run: Path | str, pretrained_backbone: bool = True) -> tuple[GeoModel, TrainConfig, dict]:
    """The best checkpoint of a run as a full pixels → logits model (the frozen backbone re-attached)."""
    path = Path(run) / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train first")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(ck["config"])
    head_keys = sorted(k for k in ck["model"] if k.startswith("head.net.") and k.endswith(".weight"))
    num_cells = ck["model"][head_keys[-1]].shape[0]
    onehot = ck["model"].get("head.cell_country")
    cell_country = onehot.argmax(1).tolist() if onehot is not None else None
    model = build_model(cfg, num_cells, ck["feature_dim"], pretrained=pretrained_backbone and cfg.frozen,
                        cell_country=cell_country)
    if cfg.frozen:
        model.head.load_state_dict({k[len("head."):]: v for k, v in ck["model"].items() if k.startswith("head.")})
    else:
        model.load_state_dict(ck["model"])
    return model.eval(), cfg, ck["state"]
