"""colorgan-keyframes: the first frame of every shot (as the filter finds shots), every N frames, gray PNGs a
user can colour and feed back to colorize(references=folder), a contact sheet, and its command line."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs
from skimage import data

from vs_colorgan import colorize
from vs_colorgan.reference.keyframes import export_keyframes, main
from conftest import gray_clip, pan_frames, save_tiny_model

core = vs.core


def two_shots() -> list[np.ndarray]:
    return pan_frames(7) + pan_frames(9, dx=1, dy=2, photo=data.astronaut())


def test_first_frame_of_every_shot_and_every_n(tmp_path: Path) -> None:
    clip = gray_clip(two_shots())
    keys = export_keyframes(clip, tmp_path / "a", render_size=64, multiple=16)
    assert keys == [0, 7]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["contact_sheet.png", "ref_000000.png",
                                                                 "ref_000007.png"]
    keys = export_keyframes(clip, tmp_path / "b", render_size=64, multiple=16, every=4)
    assert keys == [0, 4, 7, 11, 15]
    # a _SceneChangePrev prop is a cut, as in the filter
    marked = clip[:3] + core.std.SetFrameProps(clip[3], _SceneChangePrev=1) + clip[4:]
    assert export_keyframes(marked, tmp_path / "c", render_size=64, multiple=16) == [0, 3, 7]
    # the gray image is the frame's luma, full range, in three equal channels
    img = cv2.imread(str(tmp_path / "a" / "ref_000007.png"), cv2.IMREAD_UNCHANGED)
    y = np.asarray(clip.get_frame(7)[0]).astype(np.float32)
    assert img.shape == (64, 96, 3) and (img[..., 0] == img[..., 2]).all()
    assert np.abs(img[..., 0] - np.clip((y - 16) * 255 / 219, 0, 255)).max() <= 1
    sheet = cv2.imread(str(tmp_path / "a" / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 0


def test_coloured_keyframes_feed_colorize(tmp_path: Path) -> None:
    frames = two_shots()
    clip = gray_clip(frames)
    export_keyframes(clip, tmp_path, render_size=64, multiple=16)
    uncoloured = str(tmp_path / "ref_000007.png")
    model = save_tiny_model(tmp_path)
    with pytest.raises(vs.Error, match="frame 0 .*ref_000000.png.*has no colour.*or delete it"):  # left gray
        colorize(clip, model=str(model), references=tmp_path)
    # the user colours frame 7 (here: with the truth) and deletes the frame 0 file
    cv2.imwrite(uncoloured, frames[7][..., ::-1])
    (tmp_path / "ref_000000.png").unlink()
    out = colorize(clip, model=str(model), references=tmp_path)
    assert out.get_frame(10).props["_ColorRefKeys"] == 7
    assert "_ColorRefKeys" not in out.get_frame(3).props


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video = tmp_path / "bw.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 24, (96, 64))
    for rgb in two_shots():
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()
    model = save_tiny_model(tmp_path)
    assert main([str(video), "--out", str(tmp_path / "refs"), "--model", str(model)]) == 0
    assert "2 keyframes of 16 frames" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "refs").glob("ref_*.png")) == ["ref_000000.png", "ref_000007.png"]
    with pytest.raises(SystemExit):
        main([str(video), "--out", str(tmp_path / "x"), "--every", "0"])
    assert "--every must be a positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.avi"), "--out", str(tmp_path / "x")])
    assert "missing.avi: no such file" in capsys.readouterr().err
