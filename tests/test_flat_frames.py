"""Smooth and flat pictures get one plausible tint or none, never a rainbow (issue 17).

The bundled model, through the filter with its defaults, on the synthetic frames of
:mod:`vs_colorgan.evaluate.flat_frames`. Issue 17's rule: at most 1 % of the frame may be clearly coloured
(chroma > 15) with a hue more than 60 degrees from the frame's chroma-weighted mean hue. The model that
shipped before this rule painted 12-15 % of such frames in a blob of bands in the top-left corner.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vs_colorgan.evaluate.flat_frames import colorize_frame, flat_frames
from vs_colorgan.evaluate.metrics import rainbow_share
from vs_colorgan.model_io import DEFAULT_MODEL, load_generator
from vs_colorgan.networks import build_generator, set_padding

FRAMES = flat_frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_bundled_model_paints_no_rainbow(name: str) -> None:
    share = rainbow_share(colorize_frame(FRAMES[name]))
    assert share <= 0.01, f"{name}: {share:.1%} of the frame is coloured off the main hue"


def test_rainbow_share_tells_a_tint_from_a_rainbow() -> None:
    """The measure itself: a gray or one-tint picture scores 0, hue bands score their area."""
    h, w = 64, 90
    gray = np.full((h, w, 3), 120, np.uint8)
    tint = gray.copy()
    tint[..., 0] += 25  # a warm cast everywhere
    bands = gray.copy()
    bands[:, :30, 0] = 200  # red
    bands[:, 30:60, 1] = 200  # green
    bands[:, 60:, 2] = 200  # blue
    assert rainbow_share(gray) == 0.0
    assert rainbow_share(tint) == 0.0
    assert rainbow_share(bands) > 0.6


def test_reflect_padding_keeps_a_flat_input_flat() -> None:
    """The cause, in the network: zero padding marks the border, reflect padding does not. A flat input
    through any reflect-padded generator gives the same chroma at every pixel."""
    torch.manual_seed(0)
    flat = torch.full((1, 1, 96, 160), -0.1)
    for arch in ("unet", "colorization-net"):
        net = build_generator(arch, 8, padding="reflect").eval()
        with torch.no_grad():
            for m in net.modules():  # random running statistics, so the layers are not near-identity
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
            ab = net(flat)
            assert (ab - ab[..., :1, :1]).abs().max() < 1e-5, arch
            ab_zeros = set_padding(net, "zeros")(flat)
        assert (ab_zeros - ab_zeros[..., :1, :1]).abs().max() > 1e-3, arch  # zero padding varies


def test_bundled_model_pads_by_reflection() -> None:
    _, cfg = load_generator(DEFAULT_MODEL)
    assert cfg.padding == "reflect"
