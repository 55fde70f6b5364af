"""vs_colorgan.media: the one image decoder (OpenCV) behind the keyframe references, training data and evaluation."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vs_colorgan.media import decode_image, read_rgb


def test_decode_keeps_alpha_and_16_bit_samples_in_rgb_order(tmp_path: Path) -> None:
    rgba16 = np.zeros((6, 8, 4), np.uint16)
    rgba16[..., 0], rgba16[..., 2], rgba16[..., 3] = 65535, 1000, 40000
    cv2.imwrite(str(tmp_path / "a.png"), rgba16[..., [2, 1, 0, 3]])  # OpenCV writes BGRA
    got = decode_image(tmp_path / "a.png")
    assert got.dtype == np.uint16 and np.array_equal(got, rgba16)
    assert np.array_equal(decode_image((tmp_path / "a.png").read_bytes()), rgba16)  # bytes alike
    assert decode_image(b"not an image") is None and decode_image(tmp_path / "missing.png") is None


def test_read_rgb_resolves_transparency_as_pillow_did(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0
    rgba[5:10, :, 3] = 90
    Image.fromarray(rgba).save(tmp_path / "t.png")
    on_white = Image.alpha_composite(Image.new("RGBA", (40, 30), (255,) * 4), Image.fromarray(rgba)).convert("RGB")
    assert np.array_equal(read_rgb(tmp_path / "t.png"), np.asarray(on_white))
    assert read_rgb(tmp_path / "t.png", transparent="reject") is None
    cut = read_rgb(tmp_path / "t.png", transparent="cutout")
    assert cut.shape == (25, 40, 3)  # cropped to the pixels that are not (almost) transparent


def test_read_rgb_decodes_big_jpegs_at_a_reduced_scale(tmp_path: Path) -> None:
    rgb = np.repeat(np.linspace(0, 255, 800, dtype=np.uint8)[None, :, None], 600, axis=0).repeat(3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=95)
    assert read_rgb(tmp_path / "big.jpg").shape == (600, 800, 3)
    assert read_rgb(tmp_path / "big.jpg", min_short=140).shape == (150, 200, 3)  # 1/4: the smallest >= 140
    assert read_rgb(tmp_path / "big.jpg", max_side=100).shape == (75, 100, 3)
