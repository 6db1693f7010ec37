"""One way to build a model: `create_model(ModelConfig)` → backbone (timm) + geocell head.

The exported graph is exactly this module: pixels [N, 3, S, S] → logits [N, cells].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import timm
import torch
from torch import nn

from runtime.config import Config
from runtime.preprocess import InputSpec
from training.backbones import REGISTRY, input_defaults, timm_name
from training.errors import ConfigError, WeightsError
from training.weights import load_pretrained

if TYPE_CHECKING:
    from training.config import TrainConfig


class HeadConfig(Config):
    hidden: int = 0          # 0: a linear head; >0: one hidden layer (GELU) of this width
    dropout: float = 0.1
    country: bool = False    # also a direct country head, folded into the cell logits (see Head)
    country_mix: float = 0.0  # weight of the cell head's own country marginal beside the country head's


def create_backbone(name: str, weights: str = "auto", size: int | None = None) -> nn.Module:
    """A timm feature extractor (num_classes=0: pooled features), pretrained as `weights` says; a
    registered variant (training.backbones) is its architecture, truncated and pooled as recorded."""
    record = REGISTRY.get(name)
    arch = timm_name(name)
    if not timm.is_model(arch):
        raise WeightsError(f"unknown backbone {name!r}: not a timm model name")
    kwargs = {"num_classes": 0}
    if "vit" in arch and size:
        kwargs["img_size"] = size  # ViTs fix their position-embedding grid at creation
    if weights == "hub":
        try:
            model = timm.create_model(arch, pretrained=True, **kwargs)
        except Exception as e:  # noqa: BLE001 - any download/hub failure means the same to the user
            raise WeightsError(f"cannot download {arch} weights from the hub ({e}); use weights='auto' or a file") from e
    else:
        model = timm.create_model(arch, pretrained=False, **kwargs)
        load_pretrained(model, name, weights)
    if record and record.depth:
        model.blocks = nn.Sequential(*list(model.blocks)[: record.depth])
    if record and record.pool == "cls_mean":
        model = ClsMeanPool(model)
    return model


class ClsMeanPool(nn.Module):
    """A ViT's tokens after its blocks → [norm(CLS), norm(mean of the patch tokens)]: the final norm is
    applied after pooling (as timm's fc_norm does for average pooling), so middle blocks pool well."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.norm, vit.norm = vit.norm, nn.Identity()
        self.vit = vit
        self.num_features = 2 * vit.num_features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(pixels)
        patches = tokens[:, self.vit.num_prefix_tokens:].mean(1)
        return torch.cat([self.norm(tokens[:, 0]), self.norm(patches)], 1)


class Head(nn.Module):
    """Standardize the backbone's features (train-set statistics, fixed), then linear or MLP.

    With a country head (`cfg.country`, `cell_country[c]` = country index of cell c) the output is
    still one logit per cell, folded so that summing the cell posterior over a country gives the
    country head's probability (mixed in log space with the cells' own marginal by `country_mix`):
        out[c] = log p_cells(c | country(c)) + log p_country(country(c)).
    The bundle format, regions and points stay as they are.
    """

    def __init__(self, in_features: int, num_cells: int, cfg: HeadConfig, cell_country: list[int] | None = None):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
        if cfg.hidden:
            layers += [nn.Linear(in_features, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            in_features = cfg.hidden
        layers.append(nn.Linear(in_features, num_cells))
        self.net = nn.Sequential(*layers)
        self.country = None
        if cfg.country:
            if cell_country is None or len(cell_country) != num_cells:
                raise ConfigError("a country head needs the country index of every cell")
            onehot = nn.functional.one_hot(torch.as_tensor(cell_country)).float()  # [cells, countries]
            self.register_buffer("cell_country", onehot)
            self.register_buffer("country_mix", torch.tensor(float(cfg.country_mix)))
            self.country = nn.Linear(in_features, onehot.shape[1])

    def parts(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(cell logits, country logits or None): what training's losses see."""
        h = self.net[:-1]((features - self.feature_mean) / self.feature_std)
        return self.net[-1](h), (self.country(h) if self.country is not None else None)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        cells, country = self.parts(features)
        return cells if country is None else self.fold(cells, country)

    def fold(self, cells: torch.Tensor, country: torch.Tensor) -> torch.Tensor:
        m = self.cell_country                                           # [C, K]
        # log-sum-exp of the cell logits per country, with a per-country max (no underflow to -inf)
        peak = (cells[:, :, None] + (m - 1) * 1e9).amax(dim=1)           # [N, K]
        lse = torch.log(torch.exp(cells - peak @ m.T) @ m) + peak         # [N, K]
        within = cells - lse @ m.T                                        # log p(cell | its country)
        mixed = self.country_mix * torch.log_softmax(lse, 1) + (1 - self.country_mix) * torch.log_softmax(country, 1)
        return within + torch.log_softmax(mixed, 1) @ m.T


class GeoModel(nn.Module):
    """pixels → geocell logits."""

    def __init__(self, backbone: nn.Module, head: Head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(pixels))


class Parts(nn.Module):
    """A GeoModel seen as pixels → (cell logits, country logits or None): what training's losses (and
    DDP) wrap; the exported graph stays GeoModel's."""

    def __init__(self, model: GeoModel):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.model.head.parts(self.model.backbone(pixels))


def input_spec(cfg: TrainConfig) -> InputSpec:
    d = input_defaults(cfg.backbone)
    return InputSpec(size=cfg.size or d["size"], mean=tuple(d["mean"]), std=tuple(d["std"]))


def build_model(cfg: TrainConfig, num_cells: int, feature_dim: int | None = None, pretrained: bool = True,
                cell_country: list[int] | None = None) -> GeoModel:
    spec = input_spec(cfg)
    backbone = create_backbone(cfg.backbone, cfg.weights if pretrained else "none", spec.size)
    dim = feature_dim or backbone.num_features
    return GeoModel(backbone, Head(dim, num_cells, cfg.head, cell_country))
