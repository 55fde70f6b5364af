"""The bundled default model: present, small, one model in two files, and it colours the sample clip."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vs_colorgan
from vs_colorgan.model_io import DEFAULT_MODEL, DEFAULT_ONNX, read_config

core = vs.core
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_bw.mp4"
MAX_BYTES = 20 * 1024 * 1024


def test_files_are_small_and_describe_the_same_model() -> None:
    import onnx

    for path in (DEFAULT_MODEL, DEFAULT_ONNX):
        assert path.is_file(), f"{path} is missing"
        assert path.stat().st_size <= MAX_BYTES
    assert read_config(DEFAULT_MODEL) == read_config(DEFAULT_ONNX)
    # the .onnx was exported from exactly this .safetensors (colorgan-export records the source hash)
    meta = {p.key: p.value for p in onnx.load(str(DEFAULT_ONNX), load_external_data=False).metadata_props}
    assert meta["vs_colorgan.source_sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    assert meta["vs_colorgan.interface"] == "native"


@pytest.fixture(scope="module")
def sample() -> vs.VideoNode:
    return core.bs.VideoSource(str(SAMPLE))[40:43]


def _planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.asarray(frame[p]).copy() for p in range(frame.format.num_planes)]


def test_default_model_colours_the_sample_through_both_backends(sample: vs.VideoNode) -> None:
    outs = {b: vs_colorgan.colorize(sample, backend=b, temporal_radius=0) for b in ("torch", "ort")}
    for n in range(sample.num_frames):
        src = _planes(sample.get_frame(n))
        got = {b: _planes(o.get_frame(n)) for b, o in outs.items()}
        for planes in got.values():
            assert np.array_equal(planes[0], src[0])  # luma untouched
            # it predicts colour: the chroma moves away from neutral (128) somewhere
            assert max(np.abs(planes[p].astype(int) - 128).max() for p in (1, 2)) >= 8
        for p in (1, 2):  # the two files agree (fp32 both; a code value of rounding)
            diff = np.abs(got["torch"][p].astype(int) - got["ort"][p].astype(int))
            assert diff.max() <= 1
