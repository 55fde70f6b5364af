"""What ``colorgan-eval`` shows: a markdown table, a contact sheet and the flicker plot."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from .scoring import SequenceScorer

LABELS = {
    "ours": "ours",
    "per_frame": "ours, temporal_radius=0",
    "gray": "gray baseline (zero chroma)",
    "reference": "ground truth",
}
COLUMNS = (
    ("psnr", "PSNR dB ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.4f}"),
    ("ciede2000", "ΔE00 ↓", "{:.2f}"),
    ("false_colour", "false colour ↓", "{:.1%}"),
    ("colorfulness", "colourfulness", "{:.2f}"),
    ("colorfulness_ratio", "× GT", "{:.2f}"),
    ("cdc", "CDC ↓", "{:.5f}"),
    ("warp_error", "warp error ↓", "{:.6f}"),
    ("chroma_change", "Δchroma/frame", "{:.3f}"),
)


def markdown_table(results: Mapping[str, Mapping[str, float | None]]) -> str:
    """One row per variant; "–" where a metric does not apply (null in the JSON)."""
    head = "| | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    rows = [head, rule]
    for name, scores in results.items():
        cells = ["–" if scores.get(k) is None else fmt.format(scores[k]) for k, _, fmt in COLUMNS]
        rows.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` with a black caption bar on top."""
    bar_h = max(18, img.shape[0] // 12)
    bar = np.zeros((bar_h, img.shape[1], 3), np.uint8)
    scale = bar_h / 30
    cv2.putText(bar, text, (4, int(bar_h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def contact_sheet(
    rows: Sequence[tuple[int, Sequence[np.ndarray]]], path: Path, *, titles: Sequence[str], max_width: int = 1800
) -> None:
    """Save a PNG with one row per picked frame: ``(frame number, [gray, ours, ground truth])``."""
    from PIL import Image

    lines = []
    for n, images in rows:
        lines.append(np.hstack([_label(img, f"{t} #{n}") for img, t in zip(images, titles, strict=True)]))
    sheet = Image.fromarray(np.vstack(lines))
    if sheet.width > max_width:
        sheet = sheet.resize((max_width, round(sheet.height * max_width / sheet.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def flicker_plot(scorers: Mapping[str, SequenceScorer], path: Path, *, title: str = "") -> None:
    """Per-frame colourfulness (top) and frame-to-frame chroma change (bottom) of each variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    styles = {"ours": "C0", "per_frame": "C1", "gray": "0.6", "reference": "k"}
    for name in sorted(scorers, key=lambda k: k == "ours"):  # ours drawn last, on top
        s = scorers[name]
        kw = {"color": styles.get(name), "label": LABELS.get(name, name), "linewidth": 1.2}
        top.plot(np.arange(s.frames), s.colorfulness, **kw)
        bottom.plot(np.arange(1, s.frames), s.chroma_change, **kw)
    top.set_ylabel("colourfulness (H&S 2003)")
    bottom.set_ylabel("mean |Δab| to previous frame")
    bottom.set_xlabel("frame")
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    if title:
        top.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
