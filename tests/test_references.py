"""colorize(references=...): the dict, folder and clip forms, keyframe chroma, partial references (strokes),
and every bad input. Inputs are made here: a colour photograph (scikit-image's coffee) panned across a small
frame, its luma as the black-and-white clip, and a tiny model (tests/test_filter.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs

from vs_colorgan import colorize
from vs_colorgan.reference.scribble import fill_from_strokes
from skimage import data
from conftest import frames_clip, gray_clip, chroma, expected_chroma, pan_frames

core = vs.core
W, H = 96, 64








def rgb_of(frame: vs.VideoFrame) -> np.ndarray:
    return np.dstack([np.asarray(frame[p]) for p in range(3)])


def to_rgb(clip: vs.VideoNode) -> vs.VideoNode:
    return core.resize.Point(clip, format=vs.RGB24)






def error_of(clip: vs.VideoNode, model: Path, references) -> str:
    with pytest.raises(vs.Error) as info:
        colorize(clip, model=str(model), references=references)
    return str(info.value)


# ------------------------------------------------------------------------------------------------ forms
def test_dict_of_array_keyframe_is_the_reference_and_luma_is_exact(model: Path) -> None:
    frames = pan_frames(6)
    gray = gray_clip(frames)
    out = colorize(gray, model=str(model), references={2: frames[2]})
    assert out.format.id == vs.YUV444P8
    for n in range(6):
        f, g = out.get_frame(n), gray.get_frame(n)
        assert np.array_equal(np.asarray(f[0]), np.asarray(g[0]))  # luma bit-exact
    key = out.get_frame(2)
    diff = np.abs(chroma(key) - expected_chroma(frames[2]))
    assert diff.mean() < 0.6 and diff.max() <= 3  # the user's chroma, up to rounding and the gamut limit
    assert key.props["_ColorRefConfidence"] == 1.0 and key.props["_ColorRefKeys"] == 2
    # frames on both sides of the key take its colour: far closer to the truth than neutral chroma
    for n in (0, 5):
        err = np.abs(chroma(out.get_frame(n)) - expected_chroma(frames[n])).mean()
        neutral = np.abs(expected_chroma(frames[n])).mean()
        assert err < 0.35 * neutral, (n, err, neutral)
        assert out.get_frame(n).props["_ColorRefKeys"] == 2
        assert 0.0 < out.get_frame(n).props["_ColorRefConfidence"] <= 1.0


def test_folder_path_array_and_clip_forms_agree(model: Path, tmp_path: Path) -> None:
    frames = pan_frames(5)
    gray = gray_clip(frames)
    folder = tmp_path / "refs"
    folder.mkdir()
    cv2.imwrite(str(folder / "ref_000003.png"), frames[3][..., ::-1])
    (folder / "notes.txt").write_text("not a reference")  # other files are ignored
    by_folder = colorize(gray, model=str(model), references=folder)
    by_str = colorize(gray, model=str(model), references=str(folder))
    by_path = colorize(gray, model=str(model), references={3: folder / "ref_000003.png"})
    by_array = colorize(gray, model=str(model), references={3: frames[3]})
    by_clip = colorize(gray, model=str(model), references={3: frames_clip([frames[3]])})
    yuv_ref = core.resize.Bicubic(frames_clip([frames[3]]), format=vs.YUV444P16, matrix_s="709")
    by_yuv_clip = colorize(gray, model=str(model), references={3: yuv_ref})
    for n in range(5):
        a = chroma(by_folder.get_frame(n))
        assert np.array_equal(a, chroma(by_str.get_frame(n)))
        assert np.array_equal(a, chroma(by_path.get_frame(n)))
        assert np.array_equal(a, chroma(by_array.get_frame(n)))  # the same 8-bit pixels
        # a clip's pixels reach float through zimg (RGB24 -> RGBS), an array's through numpy: ~1e-7 apart, which
        # can move a code by one where a value sits on a rounding boundary
        d = np.abs(a - chroma(by_clip.get_frame(n)))
        assert d.max() <= 1 and np.count_nonzero(d) <= 0.001 * d.size
        assert np.abs(a - chroma(by_yuv_clip.get_frame(n))).mean() < 1.0  # through a YUV round trip


def test_reference_of_another_size_is_resized(model: Path) -> None:
    frames = pan_frames(3)
    big = cv2.resize(frames[0], (W * 2, H * 2), interpolation=cv2.INTER_CUBIC)
    out = colorize(gray_clip(frames), model=str(model), references={0: big})
    diff = np.abs(chroma(out.get_frame(0)) - expected_chroma(frames[0]))
    assert diff.mean() < 2.0


def test_rgb_and_yuv420_clips_keep_their_format(model: Path) -> None:
    frames = pan_frames(3)
    yuv = core.resize.Bicubic(gray_clip(frames), format=vs.YUV420P10)
    out = colorize(yuv, model=str(model), references={0: frames[0]})
    assert out.format.id == vs.YUV420P10
    assert np.array_equal(np.asarray(out.get_frame(1)[0]), np.asarray(yuv.get_frame(1)[0]))
    rgb = core.resize.Bicubic(gray_clip(frames), format=vs.RGB24, matrix_in_s="170m")
    out = colorize(rgb, model=str(model), references={0: frames[0]}, matrix=6)  # the matrix the luma was made with
    assert out.format.id == vs.RGB24
    err = np.abs(rgb_of(out.get_frame(0)).astype(int) - frames[0]).mean()
    assert err < 3.0


# ------------------------------------------------------------------------------------------------ strokes
def two_regions() -> tuple[np.ndarray, np.ndarray]:
    """A gray picture with a strong vertical luma edge (dark left, bright right, a little texture), and
    its luma Y' in [0, 1]."""
    rng = np.random.default_rng(3)
    y = np.where(np.arange(W)[None, :] < W // 2, 0.3, 0.75) + rng.normal(0, 0.01, (H, W))
    y = np.clip(y, 0, 1).astype(np.float32)
    gray = np.repeat((y * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    return gray, y


def test_levin_fill_spreads_inside_regions_not_across_edges() -> None:
    _, y = two_regions()
    values = np.zeros((H, W, 2), np.float32)
    painted = np.zeros((H, W), bool)
    painted[10:14, 5:20] = True
    values[10:14, 5:20] = (0.2, -0.1)  # left region
    painted[50:54, 70:90] = True
    values[50:54, 70:90] = (-0.15, 0.2)  # right region
    out = fill_from_strokes(y, values, painted)
    assert np.array_equal(out[painted], values[painted])  # strokes kept
    left, right = out[:, : W // 2 - 1], out[:, W // 2 + 1:]
    assert np.abs(left - (0.2, -0.1)).max() < 0.03  # spread over its whole region
    assert np.abs(right - (-0.15, 0.2)).max() < 0.03  # including the pixels next to the edge


def test_partial_reference_is_filled_and_its_strokes_kept(model: Path) -> None:
    gray_rgb, _ = two_regions()
    clip = gray_clip([gray_rgb] * 3)
    strokes = np.zeros((H, W, 4), np.uint8)
    red, blue = (200, 40, 40), (40, 60, 210)
    strokes[8:12, 4:30, :3] = red
    strokes[8:12, 4:30, 3] = 255
    strokes[50:54, 60:92, :3] = blue
    strokes[50:54, 60:92, 3] = 255
    out = colorize(clip, model=str(model), references={1: strokes})
    key = chroma(out.get_frame(1))
    # strokes kept: the chroma under a stroke is the stroke's (on the frame's luma, within the gamut limit)
    cb_r, cr_r = key[9:11, 6:28, 0].mean(), key[9:11, 6:28, 1].mean()
    cb_b, cr_b = key[51:53, 62:90, 0].mean(), key[51:53, 62:90, 1].mean()
    assert cr_r > 25 and cb_r < 0 and cb_b > 25 and cr_b < 0
    # spread inside each region, not across the strong luma edge in the middle
    left_far = key[40:64, 2:W // 2 - 3]
    right_near = key[0:30, W // 2 + 2:W - 2]
    assert (left_far[..., 1] > 10).mean() > 0.95, "red spreads down the left region"
    assert (right_near[..., 0] > 10).mean() > 0.95, "blue fills the right region up to the edge"
    assert key[:, W // 2 + 2:, 1].max() < 5, "no red crosses the edge"
    # and the neighbouring frames (same picture) carry it
    assert np.abs(chroma(out.get_frame(2)) - key).mean() < 2.0


# ------------------------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    frame = pan_frames(1)[0]
    out = {}
    out["text"] = d / "ref_000001.png"
    out["text"].write_text("not an image")
    out["gray"] = d / "gray.png"
    cv2.imwrite(str(out["gray"]), cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    out["gray3"] = d / "gray3.png"
    cv2.imwrite(str(out["gray3"]), np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))
    out["wide"] = d / "wide.png"
    cv2.imwrite(str(out["wide"]), cv2.resize(frame, (W * 2, H))[..., ::-1])
    out["transparent"] = d / "transparent.png"
    cv2.imwrite(str(out["transparent"]), np.zeros((H, W, 4), np.uint8))
    out["good"] = d / "good.png"
    cv2.imwrite(str(out["good"]), frame[..., ::-1])
    (d / "empty").mkdir()
    (d / "empty" / "frame_000001.png").write_bytes(out["good"].read_bytes())  # not named ref_*
    out["empty"] = d / "empty"
    (d / "dupes").mkdir()
    for name in ("ref_000002.png", "ref_000002.jpg"):
        (d / "dupes" / name).write_bytes(out["good"].read_bytes())
    out["dupes"] = d / "dupes"
    (d / "outside").mkdir()
    (d / "outside" / "ref_000099.png").write_bytes(out["good"].read_bytes())
    out["outside"] = d / "outside"
    return out


@pytest.mark.parametrize("case, expected", [
    ("outside", ["frame 99", "ref_000099.png", "outside the clip (frames 0-4)"]),
    ("outside_dict", ["frame 5", "good.png", "outside the clip"]),
    ("negative", ["frame -1", "outside the clip"]),
    ("text", ["frame 1", "ref_000001.png", "cannot be read as an image"]),
    ("missing", ["frame 2", "nope.png", "no such file"]),
    ("gray", ["frame 0", "gray.png", "single-channel"]),
    ("gray3", ["frame 0", "gray3.png", "has no colour"]),
    ("wide", ["frame 0", "wide.png", "192x64", "does not match the clip's 96x64"]),
    ("transparent", ["frame 0", "transparent.png", "fully transparent"]),
    ("empty", ["has no ref_NNNNNN.png", "empty"]),
    ("dupes", ["frame 2 has two files", "ref_000002.jpg"]),
    ("not_a_folder", ["is not a folder", "nowhere"]),
    ("empty_dict", ["not an empty dict"]),
    ("wrong_type", ["must be a dict", "not list"]),
    ("str_key", ["keys must be frame numbers", "'3'"]),
    ("bad_value", ["frame 0", "must be a path, an RGB(A) array or a one-frame colour clip, not int"]),
    ("bad_shape", ["frame 0 (an array)", "(64, 96)"]),
    ("bad_dtype", ["frame 0 (an array)", "int64"]),
    ("bad_range", ["frame 0 (an array)", "values in [0, 1]"]),
    ("long_clip", ["frame 0 (a clip)", "exactly one frame, not 2"]),
    ("gray_clip", ["frame 0 (a clip)", "must be RGB or YUV", "Gray8"]),
])
def test_bad_references_name_the_file_and_frame(model: Path, files: dict[str, Path], case: str,
                                                expected: list[str]) -> None:
    gray = gray_clip(pan_frames(5))
    frame = pan_frames(1)[0]
    references = {
        "outside": files["outside"], "outside_dict": {5: files["good"]}, "negative": {-1: frame},
        "text": {1: files["text"]}, "missing": {2: files["text"].parent / "nope.png"},
        "gray": {0: files["gray"]}, "gray3": {0: str(files["gray3"])}, "wide": {0: files["wide"]},
        "transparent": {0: files["transparent"]}, "empty": files["empty"], "dupes": files["dupes"],
        "not_a_folder": "/nowhere/refs", "empty_dict": {}, "wrong_type": [frame], "str_key": {"3": frame},
        "bad_value": {0: 7}, "bad_shape": {0: frame[..., 0]}, "bad_dtype": {0: frame.astype(np.int64)},
        "bad_range": {0: frame.astype(np.float32)}, "long_clip": {0: frames_clip([frame, frame])},
        "gray_clip": {0: core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=1)},
    }[case]
    message = error_of(gray, model, references)
    assert message.startswith("vs_colorgan.colorize: \"references\""), message
    for part in expected:
        assert part in message, (part, message)


def test_references_are_checked_before_the_model_is_loaded(tmp_path: Path) -> None:
    gray = gray_clip(pan_frames(3))
    with pytest.raises(vs.Error, match="\"references\": frame 7 \\(an array\\) is outside the clip"):
        colorize(gray, model=str(tmp_path / "missing.safetensors"), references={7: pan_frames(1)[0]})


# ------------------------------------------------------------------------------------------------ saturation
def test_saturation_scales_the_colour_carried_from_references(model: Path) -> None:
    """colorize's gain reaches every colour of the keyframe mode: the key's, the carried one, a palette's (and
    the automatic fallback where confidence is low): saturation=0 is exactly neutral, 0.5 about half."""
    frames = pan_frames(8)
    gray = gray_clip(frames)
    other = pan_frames(1, photo=data.astronaut()[::-1])[0]  # its luma is not frame 6's: a palette
    for refs in ({2: frames[2]}, {2: frames[2], 6: other}):
        neutral = colorize(gray, model=str(model), references=refs, saturation=0)
        for n in range(8):
            f = neutral.get_frame(n)
            assert np.array_equal(np.asarray(f[0]), np.asarray(gray.get_frame(n)[0]))
            assert (np.asarray(f[1]) == 128).all() and (np.asarray(f[2]) == 128).all(), (refs.keys(), n)
    full = colorize(gray, model=str(model), references={2: frames[2]})
    half = colorize(gray, model=str(model), references={2: frames[2]}, saturation=0.5)
    for n in (2, 4):
        c_full, c_half = np.abs(chroma(full.get_frame(n))).mean(), np.abs(chroma(half.get_frame(n))).mean()
        assert 0.4 * c_full < c_half < 0.6 * c_full, (n, c_full, c_half)
