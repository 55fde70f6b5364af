"""Training data: any folder of images (recursive: COCO, ImageNet class folders, our gathered set) and videos.

Each item is one image file, or one frame of a video sampled with OpenCV (``frames_per_video`` evenly
spaced frames per clip). Every file is checked once when the dataset is built (decoded at thumbnail
size): unreadable files and gray-only images (nothing to learn colour from) are skipped and counted in
:attr:`ColorDataset.skipped`, never fatal. The validation split is by a hash of each file's path, so it
is the same on every machine and run, and frames of one video never straddle the split.

Items are ``(L_norm (1, S, S), ab_norm (2, S, S))`` from :func:`vs_colorgan.color.split_lab`.

>>> train, val = build_datasets(["data/train"], image_size=256, val_fraction=0.05)
>>> l_norm, ab_norm = train[0]
"""
from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vs_colorgan.color import split_lab
from vs_colorgan.evaluate.metrics import colorfulness
from vs_colorgan.media import IMAGE_EXTS, VIDEO_EXTS, read_rgb, read_video_frame, video_frame_count

# An image counts as near-gray (nothing to learn colour from) when fewer than NEAR_GRAY_FRACTION of its
# pixels have a CIE Lab chroma above NEAR_GRAY_CHROMA: a JPEG of a gray or faintly toned photo stays
# below, a real colour photo has most pixels above. colorgan-gather applies the same test.
NEAR_GRAY_CHROMA = 8.0
NEAR_GRAY_FRACTION = 0.05


@dataclass(frozen=True)
class Item:
    path: str
    frame: int = -1  # -1: a still image; otherwise the frame index in a video
    colourfulness: float = 0.0  # of the scan's probe (a video's: its middle sampled frame), for colourful_weight


def chroma_fraction(rgb: np.ndarray, threshold: float = NEAR_GRAY_CHROMA) -> float:
    """Fraction of pixels of an RGB uint8 image whose CIE Lab chroma sqrt(a^2 + b^2) exceeds ``threshold``."""
    import cv2

    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return float((chroma > threshold).mean())


def is_near_gray(rgb: np.ndarray) -> bool:
    """The near-gray test of training data and colorgan-gather (see NEAR_GRAY_CHROMA)."""
    return chroma_fraction(rgb) < NEAR_GRAY_FRACTION


def read_image(path: str, max_side: int | None = None, min_short: int | None = None) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) of an image file, or ``None`` if unreadable; alpha composited on white
    (:func:`vs_colorgan.media.read_rgb`)."""
    return read_rgb(path, max_side=max_side, min_short=min_short, transparent="white")


def video_frame_indices(path: str, count: int) -> list[int]:
    """``count`` evenly spaced frame indices of a video (all frames if it has fewer); [] if unreadable."""
    n = video_frame_count(path)
    if n == 0 or count == 0:
        return []
    if n <= count:
        return list(range(n))
    return [int(i * n / count) for i in range(count)]


def _in_validation(rel: str, fraction: float) -> bool:
    """Deterministic split: the first 8 bytes of sha1(relative path) as a number in [0, 1)."""
    h = int.from_bytes(hashlib.sha1(rel.encode("utf-8")).digest()[:8], "big")
    return h / 2**64 < fraction


# Never trained on: clips colorgan-gather reserves for evaluation.
EXCLUDED_DIRS = frozenset({"heldout"})


def _training_dirs(root: Path) -> list[Path]:
    """A folder made by colorgan-gather (it has manifest.json) trains on its images/ and frames/ only,
    not on its package caches (pkgs/, debs/) nor its held-out clips; any other folder on everything."""
    if (root / "manifest.json").is_file() and (root / "images").is_dir():
        return [d for d in (root / "images", root / "frames") if d.is_dir()]
    return [root]


def scan(roots: list[str] | tuple[str, ...], *, frames_per_video: int = 64, show_progress: bool = True,
         exclude: tuple[str, ...] = ()) -> tuple[list[tuple[str, Item]], Counter]:
    """Walk ``roots`` recursively; return ``(relative key, Item)`` for usable files and a Counter of skips.

    ``exclude``: fnmatch patterns of relative keys to leave out (counted as "excluded")."""
    from tqdm import tqdm

    files: list[tuple[str, str]] = []
    skipped: Counter = Counter()
    for root in roots:
        rootp = Path(root)
        if rootp.is_file():
            files.append((rootp.name, str(rootp)))
            continue
        if not rootp.is_dir():
            raise ValueError(f"training.data: \"data\" must be existing folders or files, not {root!r}")
        for top in _training_dirs(rootp):
            for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    rel = os.path.relpath(full, rootp)
                    if any(fnmatch.fnmatchcase(rel, pat) for pat in exclude):
                        skipped["excluded"] += 1
                        continue
                    files.append((rel, full))
    items: list[tuple[str, Item]] = []
    for rel, full in tqdm(files, desc="scanning data", unit="file", disable=not show_progress, file=sys.stderr):
        ext = os.path.splitext(full)[1].lower()
        if ext in IMAGE_EXTS:
            rgb = read_image(full, max_side=128)
            if rgb is None:
                skipped["unreadable"] += 1
            elif min(rgb.shape[:2]) < 8:
                skipped["too small"] += 1
            elif is_near_gray(rgb):
                skipped["grayscale"] += 1
            else:
                items.append((rel, Item(full, colourfulness=colorfulness(rgb))))
        elif ext in VIDEO_EXTS:
            idx = video_frame_indices(full, frames_per_video)
            if not idx:
                skipped["unreadable"] += 1
                continue
            probe = read_video_frame(full, idx[len(idx) // 2])
            if probe is None:
                skipped["unreadable"] += 1
            elif is_near_gray(probe):
                skipped["grayscale"] += 1
            else:
                m = colorfulness(probe)
                items.extend((rel, Item(full, i, m)) for i in idx)
        else:
            skipped["not an image or video"] += 1
    return items, skipped


class ColorDataset(Dataset):
    """(L_norm, ab_norm) crops of ``image_size``; random scale/crop/flip when ``train``, centre crop otherwise."""

    def __init__(self, items: list[Item], *, image_size: int, train: bool, skipped: Counter | None = None,
                 scale_max: float = 1.25, film_augment: float = 0.0) -> None:
        self.items = items
        self.image_size = image_size
        self.train = train
        self.scale_max = scale_max  # short side resized to image_size * U(1, scale_max) when training
        self.film_augment = film_augment  # probability of each film degradation of L (training only)
        self.skipped: Counter = skipped if skipped is not None else Counter()
        self.load_failures = 0  # files that became unreadable after the scan (replaced by another item)
        # relative draw weight of each item (training.train.StepSampler samples by it), None = all alike
        self.weights: torch.Tensor | None = None

    def weigh_colourful(self, above: float, weight: float) -> int:
        """Draw items whose colourfulness exceeds ``above`` ``weight`` times as often as the others; returns how many
        there are. ``above`` 0 leaves every item alike. Raises ``ValueError`` if that leaves nothing to draw."""
        if above <= 0:
            self.weights = None
            return 0
        colourful = torch.tensor([it.colourfulness > above for it in self.items], dtype=torch.bool)
        if weight == 0 and bool(colourful.all()):
            raise ValueError(f"training.data: every training picture is more colourful than colourful_above={above}"
                             " and colourful_weight is 0: nothing left to train on")
        self.weights = torch.where(colourful, float(weight), 1.0).double()
        return int(colourful.sum())

    def __len__(self) -> int:
        return len(self.items)

    def load_item(self, item: Item) -> np.ndarray | None:
        """An item's RGB picture (uint8, at least the crop's size at the largest scale), None if unreadable."""
        if item.frame >= 0:
            return read_video_frame(item.path, item.frame)
        return read_image(item.path, min_short=math.ceil(self.image_size * self.scale_max))

    def _crop(self, rgb: np.ndarray) -> torch.Tensor:
        """Resize the short side to S * scale (scale in [1, scale_max] when training), crop S x S, maybe flip."""
        from PIL import Image

        s = self.image_size
        h, w = rgb.shape[:2]
        scale = 1.0 + (self.scale_max - 1.0) * torch.rand(()).item() if self.train else 1.0
        short = max(s, math.ceil(s * scale))
        nh, nw = (short, max(short, round(w * short / h))) if h <= w else (max(short, round(h * short / w)), short)
        im = Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BICUBIC if (nh < h) else Image.Resampling.BILINEAR)
        arr = np.asarray(im)
        if self.train:
            top = int(torch.randint(0, nh - s + 1, ()).item())
            left = int(torch.randint(0, nw - s + 1, ()).item())
        else:
            top, left = (nh - s) // 2, (nw - s) // 2
        arr = arr[top : top + s, left : left + s]
        t = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float() / 255.0  # a writable copy
        if self.train and torch.rand(()).item() < 0.5:
            t = t.flip(-1)
        return t

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        for attempt in range(len(self.items)):
            item = self.items[(index + attempt) % len(self.items)]
            rgb = self.load_item(item)
            if rgb is not None and min(rgb.shape[:2]) >= 8:
                l_norm, ab = split_lab(self._crop(rgb).unsqueeze(0))
                if self.train and self.film_augment > 0:
                    from .augment import film_degrade

                    return film_degrade(l_norm[0], self.film_augment), ab[0]
                return l_norm[0], ab[0]
            self.load_failures += 1
        raise RuntimeError("training.data: no readable item left in the dataset")


def build_datasets(
    roots: list[str] | tuple[str, ...], *, image_size: int, val_fraction: float, frames_per_video: int = 64,
    show_progress: bool = True, scale_max: float = 1.25, film_augment: float = 0.0, exclude: tuple[str, ...] = (),
    colourful_above: float = 0.0, colourful_weight: float = 1.0,
) -> tuple[ColorDataset, ColorDataset]:
    """Scan ``roots`` and split into (train, validation) datasets. Raises ``ValueError`` if nothing is usable.

    ``colourful_above`` / ``colourful_weight``: :meth:`ColorDataset.weigh_colourful` of the training set (the
    validation set keeps every picture: its figures stay comparable between runs)."""
    items, skipped = scan(roots, frames_per_video=frames_per_video, show_progress=show_progress, exclude=exclude)
    if not items:
        raise ValueError(f"training.data: no usable colour image or video under {list(roots)} (skipped: {dict(skipped)})")
    train = [it for rel, it in items if not _in_validation(rel, val_fraction)]
    val = [it for rel, it in items if _in_validation(rel, val_fraction)]
    if not train:  # tiny folders: keep at least one training item
        train, val = val[:1], val[1:]
    if not val and val_fraction > 0 and len(train) > 1:
        val = [train.pop()]  # always have something to validate and show in the before/after grid
    train_set = ColorDataset(train, image_size=image_size, train=True, skipped=skipped, scale_max=scale_max,
                             film_augment=film_augment)
    n = train_set.weigh_colourful(colourful_above, colourful_weight)
    if n:
        skipped[f"drawn x{colourful_weight:g} (colourfulness > {colourful_above:g})"] += n
    return train_set, ColorDataset(val, image_size=image_size, train=False, skipped=skipped)
