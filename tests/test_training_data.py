"""training.data: folders of images and videos, skipping and counting bad files, deterministic split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vs_colorgan.training.data import build_datasets, scan, video_frame_indices
from vs_colorgan.color import merge_lab


def _colour(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x / w, y / h, 1 - x / w], -1) * 0.8 + rng.random((h, w, 3)) * 0.2
    return (rgb * 255).astype(np.uint8)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    import cv2
    from PIL import Image

    root = tmp_path / "data"
    (root / "coco" / "train2017").mkdir(parents=True)
    (root / "imagenet" / "n01440764").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(_colour(70, 90, i)).save(root / "coco" / "train2017" / f"{i:012d}.jpg")
    Image.fromarray(_colour(64, 64, 9)).save(root / "imagenet" / "n01440764" / "a.png")
    gray = (np.random.default_rng(1).random((64, 80)) * 255).astype(np.uint8)
    Image.fromarray(gray).convert("RGB").save(root / "gray_as_rgb.jpg")  # three equal channels
    Image.fromarray(gray).save(root / "gray_L.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "broken.avi").write_bytes(b"RIFF nonsense")
    (root / "notes.txt").write_text("hello")
    vw = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(10):
        vw.write(cv2.cvtColor(_colour(64, 96, 100 + i), cv2.COLOR_RGB2BGR))
    vw.release()
    return root


def test_scan_keeps_colour_and_counts_skips(tree):
    items, skipped = scan([str(tree)], frames_per_video=4, show_progress=False)
    stills = [it for _, it in items if it.frame < 0]
    frames = [it for _, it in items if it.frame >= 0]
    assert len(stills) == 5  # 4 coco + 1 imagenet
    assert sorted(it.frame for it in frames) == [0, 2, 5, 7]  # 4 evenly spaced of 10
    assert skipped == {"grayscale": 2, "unreadable": 2, "not an image or video": 1}


def test_video_frame_indices_of_short_and_missing(tree):
    assert video_frame_indices(str(tree / "clip.avi"), 50) == list(range(10))
    assert video_frame_indices(str(tree / "nope.avi"), 5) == []


def test_items_are_lab_pairs_of_the_image(tree):
    train, val = build_datasets([str(tree)], image_size=64, val_fraction=0.3, frames_per_video=4)
    assert len(train) + len(val) == 9 and len(train) > 0 and len(val) > 0
    assert train.skipped["unreadable"] == 2
    torch.manual_seed(0)
    l_norm, ab = train[0]
    assert l_norm.shape == (1, 64, 64) and ab.shape == (2, 64, 64)
    assert l_norm.min() >= -1 and l_norm.max() <= 1 and ab.abs().max() <= 1
    assert ab.abs().mean() > 0.01  # colour survived
    rgb = merge_lab(l_norm[None], ab[None])
    assert rgb.shape == (1, 3, 64, 64)
    # validation crops are deterministic (centre crop, no flip)
    a, b = val[0], val[0]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_split_is_deterministic_and_by_file(tree):
    t1, v1 = build_datasets([str(tree)], image_size=64, val_fraction=0.5, frames_per_video=4, show_progress=False)
    t2, v2 = build_datasets([str(tree)], image_size=64, val_fraction=0.5, frames_per_video=4, show_progress=False)
    assert [i.path for i in v1.items] == [i.path for i in v2.items]
    # all frames of the clip fall on one side of the split
    sides = {("val" if it in v1.items else "train") for it in t1.items + v1.items if it.frame >= 0}
    assert len(sides) == 1


def test_file_vanishing_after_scan_is_not_fatal(tree):
    train, _ = build_datasets([str(tree / "coco")], image_size=64, val_fraction=0.0)
    Path(train.items[0].path).unlink()
    l_norm, ab = train[0]  # substitutes the next item
    assert l_norm.shape == (1, 64, 64) and train.load_failures == 1


def test_nothing_usable_is_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("no images")
    with pytest.raises(ValueError, match="no usable colour image or video"):
        build_datasets([str(tmp_path)], image_size=64, val_fraction=0.1, show_progress=False)


def test_gathered_folder_trains_on_images_and_frames_only(tree, tmp_path):
    """A colorgan-gather folder: held-out clips and package caches are never training data."""
    import shutil

    from PIL import Image

    g = tmp_path / "gathered"
    (g / "images" / "src").mkdir(parents=True)
    (g / "frames" / "clip").mkdir(parents=True)
    Image.fromarray(_colour(64, 64, 1)).save(g / "images" / "src" / "a.jpg")
    Image.fromarray(_colour(64, 64, 2)).save(g / "frames" / "clip" / "clip_00000.jpg")
    (g / "heldout").mkdir()
    shutil.copy(tree / "clip.avi", g / "heldout" / "vtest.avi")
    (g / "pkgs" / "usr").mkdir(parents=True)
    Image.fromarray(_colour(64, 64, 3)).save(g / "pkgs" / "usr" / "wallpaper.png")
    (g / "manifest.json").write_text("{}")
    items, skipped = scan([str(g)], show_progress=False)
    assert sorted(rel for rel, _ in items) == ["frames/clip/clip_00000.jpg", "images/src/a.jpg"]
    assert not skipped
    # a plain folder is searched entirely, except folders named heldout
    (g / "manifest.json").unlink()
    items, _ = scan([str(g)], show_progress=False)
    assert sorted(rel for rel, _ in items) == ["frames/clip/clip_00000.jpg", "images/src/a.jpg", "pkgs/usr/wallpaper.png"]


def test_colourful_pictures_are_drawn_by_their_weight(tmp_path: Path) -> None:
    """colourful_above / colourful_weight: the scan measures each picture's colourfulness, and the step sampler
    draws the pictures above the threshold at the given fraction of the others' rate (0: never)."""
    from PIL import Image

    from vs_colorgan.evaluate.metrics import colorfulness
    from vs_colorgan.training.train import StepSampler

    root = tmp_path / "data"
    root.mkdir()
    vivid, muted = [], []
    for i in range(6):
        rgb = _colour(64, 64, i)
        if i % 2:  # every other picture: the same picture faded toward its gray (a film-like colourfulness)
            gray = rgb.mean(axis=-1, keepdims=True)
            rgb = (gray + (rgb - gray) * 0.15).round().astype(np.uint8)
        Image.fromarray(rgb).save(root / f"{i}.png")
        (muted if i % 2 else vivid).append(f"{i}.png")
    items = dict(scan([str(root)], show_progress=False)[0])
    threshold = 0.5 * (max(items[n].colourfulness for n in muted) + min(items[n].colourfulness for n in vivid))
    assert max(items[n].colourfulness for n in muted) < threshold < min(items[n].colourfulness for n in vivid)
    assert items["0.png"].colourfulness == pytest.approx(colorfulness(_colour(64, 64, 0)), rel=0.05)

    for weight in (0.25, 0.0):
        train, _ = build_datasets([str(root)], image_size=32, val_fraction=0.0, show_progress=False,
                                  colourful_above=threshold, colourful_weight=weight)
        assert len(train) == 6
        drawn = StepSampler(train, rank=0, world=1, seed=0, start=0)
        picks = [Path(train.items[i].path).name for _, i in zip(range(6000), iter(drawn))]
        share = sum(p in vivid for p in picks) / len(picks)
        assert share == pytest.approx(3 * weight / (3 * weight + 3), abs=0.03), (weight, share)
        # the order is a pure function of the position: a resumed sampler continues the same stream
        full = [i for _, i in zip(range(4050), iter(StepSampler(train, rank=0, world=1, seed=0, start=0)))]
        resumed = [i for _, i in zip(range(50), iter(StepSampler(train, rank=0, world=1, seed=0, start=4000)))]
        assert resumed == full[4000:]

    with pytest.raises(ValueError, match="nothing left to train on"):
        build_datasets([str(root)], image_size=32, val_fraction=0.0, show_progress=False, colourful_above=0.1,
                       colourful_weight=0.0)
