"""colorgan-eval end to end on a tiny generated colour video and a tiny image folder, with a tiny model."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_colorgan.evaluate import cli, metrics
from vs_colorgan.evaluate.source import frame_array, gray_input, open_source, rgb24

KEYS = {"psnr", "ssim", "ciede2000", "false_colour", "colorfulness", "colorfulness_ratio", "cdc", "warp_error", "chroma_change"}
W, H, N = 96, 64, 12


def shapes_frame(t: int, w: int = W, h: int = H) -> np.ndarray:
    """BGR frame: a coloured gradient background, a red disc moving right, a blue square moving down."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([(60 + 100 * xx / w), (90 + 80 * yy / h), np.full((h, w), 70.0)]).astype(np.uint8)
    cv2.circle(img, (10 + 5 * t, h // 2), 10, (30, 30, 220), -1)
    cv2.rectangle(img, (w - 30, 4 + 3 * t), (w - 14, 20 + 3 * t), (200, 80, 20), -1)
    return img


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from vs_colorgan.export.onnx_export import export_onnx
    from vs_colorgan.model_io import ModelConfig, save_generator
    from vs_colorgan.networks import build_generator

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    net = build_generator("unet", width=8).eval()
    cfg = ModelConfig(arch="unet", width=8, render_size=64)
    save_generator(folder / "tiny.safetensors", net, cfg)
    export_onnx(net, cfg, folder / "tiny.onnx")
    return folder / "tiny.safetensors"


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "shapes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    assert writer.isOpened()
    for t in range(N):
        writer.write(shapes_frame(t))
    writer.release()
    return path


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for t in range(7):
        img = shapes_frame(t)
        if t == 3:  # another size: resized to cover 96x64, then centre-cropped
            img = cv2.resize(shapes_frame(t, 120, 100), (120, 100))
        cv2.imwrite(str(folder / f"{t + 1}.png"), img)  # 1.png .. 7.png: natural order, not 1, 10, 2
    return folder


def run_json(capfd, *args) -> dict:
    code = cli.main([*map(str, args), "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must hold exactly one JSON object, got: {out!r}"
    return json.loads(lines[0])


def test_video_end_to_end(tiny_model, tiny_video, tmp_path, capfd):
    out_dir = tmp_path / "eval"
    res = run_json(capfd, tiny_video, "--model", tiny_model, "--frames", 10, "--render-size", 64, "--out", out_dir)
    assert res["frames"] == 10
    assert res["size"] == [W, H]
    assert set(res["results"]) == {"ours", "per_frame", "gray", "reference"}
    for name, scores in res["results"].items():
        assert set(scores) == KEYS, name
    ours, per_frame, gray, ref = (res["results"][k] for k in ("ours", "per_frame", "gray", "reference"))

    # The reference is the ground truth scored against itself.
    assert ref["psnr"] is None and ref["ssim"] == 1.0 and ref["colorfulness_ratio"] == 1.0
    assert ref["colorfulness"] > 10  # the clip is colourful
    # Its CDC and warp error equal the ground truth's own, computed here independently.
    src = open_source(tiny_video, frames=10)
    truth = [frame_array(f) for f in rgb24(src.clip, src.matrix).frames()]
    luma = [frame_array(f) for f in vs.core.std.ShufflePlanes(gray_input(src), 0, vs.GRAY).frames()]
    assert ref["cdc"] == pytest.approx(metrics.cdc(truth), rel=1e-9)
    assert ref["warp_error"] == pytest.approx(metrics.warp_error(truth, luma), rel=1e-6)
    # Zero chroma: colourfulness and chroma change exactly 0, PSNR finite.
    assert gray["colorfulness"] == 0.0 and gray["colorfulness_ratio"] == 0.0 and gray["chroma_change"] == 0.0
    assert math.isfinite(gray["psnr"]) and 0 < gray["ssim"] < 1
    for scores in (ours, per_frame):
        assert math.isfinite(scores["psnr"]) and 0 < scores["ssim"] <= 1
        assert scores["colorfulness"] >= 0 and scores["cdc"] >= 0 and scores["warp_error"] >= 0
    assert 0 < res["warp_mask_valid_fraction"] <= 1

    # Pictures and the full metrics file.
    sheet = cv2.imread(str(out_dir / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 3 * W and sheet.shape[0] > 4 * H  # 4 rows of 3 frames
    assert cv2.imread(str(out_dir / "flicker.png")) is not None
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert saved["results"] == res["results"]
    assert len(saved["per_frame_series"]["ours"]["colorfulness"]) == 10
    assert len(saved["per_frame_series"]["ours"]["warp_error"]) == 9


def test_image_folder_and_table(tiny_model, tiny_folder, tmp_path, capfd):
    res = run_json(capfd, tiny_folder, "--model", tiny_model, "--render-size", 64, "--out", tmp_path / "a",
                   "--sheet-frames", 2)
    assert res["frames"] == 7 and res["size"] == [W, H]  # the first image's size
    assert res["results"]["gray"]["colorfulness"] == 0.0
    assert res["results"]["reference"]["colorfulness_ratio"] == 1.0

    # The markdown table (no --json): one row per variant.
    code = cli.main([str(tiny_folder), "--model", str(tiny_model), "--render-size", "64", "--frames", "3",
                     "--out", str(tmp_path / "b")])
    out, _ = capfd.readouterr()
    assert code == 0
    assert "| ours |" in out and "| ground truth |" in out and "| gray baseline (zero chroma) |" in out
    assert "PSNR" in out and "colourfulness" in out and "warp error" in out


def test_image_folder_clip_frames(tiny_folder):
    src = open_source(tiny_folder)
    assert src.kind == "images" and src.clip.format.id == vs.RGB24 and src.clip.num_frames == 7
    first = frame_array(src.clip.get_frame(0))
    np.testing.assert_array_equal(first, cv2.cvtColor(shapes_frame(0), cv2.COLOR_BGR2RGB))
    # The gray input keeps the luma of the ground truth, with neutral chroma.
    g = gray_input(src).get_frame(0)
    assert np.all(np.asarray(g[1]) == 128) and np.all(np.asarray(g[2]) == 128)


def test_errors_are_reported(tmp_path, capfd):
    assert cli.main([str(tmp_path / "missing.avi"), "--json"]) == 2
    _, err = capfd.readouterr()
    assert "neither a video file nor a folder" in err
    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty")]) == 2
    _, err = capfd.readouterr()
    assert "no images" in err
