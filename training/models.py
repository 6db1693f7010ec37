"""One way to build a model: `create_model(ModelConfig)` → backbone (timm) + geocell head.

The exported graph is exactly this module: pixels [N, 3, S, S] → logits [N, cells].
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn

from training.weights import WeightsError, load_pretrained

# the backbones compared for the default model, with the input size and normalization of their
# pretrained weights (the bundle records them; companion.preprocess applies them)
BACKBONES: dict[str, dict] = {
    "tf_efficientnet_lite0": {"size": 224, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "tf_efficientnet_lite1": {"size": 240, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "tf_efficientnet_lite2": {"size": 260, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "mobilenetv2_100": {"size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    "vit_small_patch14_dinov2": {"size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}


@dataclass
class HeadConfig:
    hidden: int = 0          # 0: a linear head; >0: one hidden layer (GELU) of this width
    dropout: float = 0.1


def backbone_defaults(name: str) -> dict:
    """Input size/mean/std for a backbone: ours for the compared ones, timm's for the rest."""
    if name in BACKBONES:
        return dict(BACKBONES[name])
    if name not in timm.list_models():
        raise WeightsError(f"unknown backbone {name!r} (not a timm model; compared: {', '.join(BACKBONES)})")
    cfg = timm.create_model(name, pretrained=False).pretrained_cfg
    return {"size": cfg["input_size"][-1], "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"])}


def create_backbone(name: str, weights: str = "auto", size: int | None = None) -> nn.Module:
    """A timm feature extractor (num_classes=0: pooled features), pretrained as `weights` says."""
    if name not in timm.list_models():
        raise WeightsError(f"unknown backbone {name!r}: not a timm model name")
    kwargs = {"num_classes": 0}
    if "vit" in name and size:
        kwargs["img_size"] = size  # ViTs fix their position-embedding grid at creation
    if weights == "hub":
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as e:  # noqa: BLE001 - any download/hub failure means the same to the user
            raise WeightsError(f"cannot download {name} weights from the hub ({e}); use weights='auto' or a file") from e
    model = timm.create_model(name, pretrained=False, **kwargs)
    load_pretrained(model, name, weights)
    return model


class Head(nn.Module):
    """Standardize the backbone's features (train-set statistics, fixed), then linear or MLP."""

    def __init__(self, in_features: int, num_cells: int, cfg: HeadConfig):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
        if cfg.hidden:
            layers += [nn.Linear(in_features, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            in_features = cfg.hidden
        layers.append(nn.Linear(in_features, num_cells))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)


class GeoModel(nn.Module):
    """pixels → geocell logits."""

    def __init__(self, backbone: nn.Module, head: Head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(pixels))
