"""Run configuration (JSON files under training/configs/ fill it), on runtime.config: unknown keys
and bad values are refused with the key named."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from runtime.config import Config, load_config, read_json
from training.models import HeadConfig


class TrainConfig(Config):
    # data (dataprep's output)
    manifest: str = "work/datasets/streetview/manifest.jsonl"
    cells: str | None = None                 # default: cells.geojson beside the manifest
    datalist_sha256: str | None = None       # refuse to train on any other dataset version
    views_per_location: int | None = None    # keep the first k views (by id) of each place; None: all
    # model
    backbone: str = "vit_small_patch14_dinov2"
    weights: str = "auto"                    # auto | hub | none | path to a .pth
    size: int | None = None                  # input side; None: the backbone's default
    head: HeadConfig = Field(default_factory=HeadConfig)
    frozen: bool = True                      # True: train the head on cached backbone features
    cut: int | None = None                   # fine-tuning from a stage cache: train blocks[cut:] + head only
    views: int = 4                           # stage cache: view 0 as served + views-1 augmented crops per tile
    stages_dir: str = "work/stages"
    init_head: str | None = None             # fine-tuning: start the head from this frozen run's best.pt
    features_dir: str = "work/features"
    # objective
    tau_km: float = 70.0                     # haversine label smoothing temperature
    balance: float = 0.5                     # sample weight ∝ (country's train count)^-balance
    country_balance: float | None = None     # the same for the country head's loss; None: `balance`
    # optimisation
    epochs: int = 80
    batch_size: int = 256
    lr: float = 2e-3
    backbone_lr: float = 5e-5                # fine-tuning only
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    patience: int = 12                       # early stopping on `select`, in epochs
    # world-validation metric to maximise (game-weighted, prior applied)
    select: Literal["geoguessr_score", "country_top1", "country_balanced_acc", "cell_top1"] = "geoguessr_score"
    max_steps: int | None = None             # stop after this many optimizer steps (smoke tests)
    augment: Literal["none", "mild", "strong"] = "mild"   # fine-tuning; frozen features are fixed
    seed: int = 0
    # bookkeeping
    out: str = "work/runs/default"
    resume: bool = True
    wandb: Literal["offline", "online", "disabled"] = "offline"

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return load_config(cls, d)

    def to_dict(self) -> dict:
        return self.model_dump()


class DefaultConfig(Config):
    """`python -m training default`: train, evaluate and export the companion's default bundle."""

    train: TrainConfig = Field(default_factory=TrainConfig)
    warmup: TrainConfig | None = None        # trained first; its head starts `train` (train.init_head)
    bundle: str = "companion/models/default"
    quantize: bool = False                   # int8 dynamic quantization of the ONNX graph
    max_bundle_mb: float = 30.0
    model_id: str | None = None
    report: str = "work/reports/default"

    @classmethod
    def load(cls, path: Path | str) -> DefaultConfig:
        return cls.load_dict(read_json(path), str(path))

    @classmethod
    def load_dict(cls, d: dict, where: str = "config") -> DefaultConfig:
        d = dict(d)
        warmup = d.get("warmup")
        if isinstance(warmup, dict):
            # the warm-up is a frozen head on the main run's data and head settings, unless it says otherwise
            base = load_config(TrainConfig, d.get("train", {}), f"{where}: train").to_dict()
            base |= {"frozen": True, "cut": None, "init_head": None}
            d["warmup"] = base | warmup | {"head": base["head"] | warmup.get("head", {})}
        return load_config(cls, d, where)


def load_train_config(path: Path | str | None, overrides: dict | None = None) -> TrainConfig:
    d = read_json(path) if path else {}
    d = d.get("train", d)
    d.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return load_config(TrainConfig, d, str(path or "config"))
