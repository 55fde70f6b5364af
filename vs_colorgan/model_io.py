"""Generator files: what they hold, how they are written and how they are read back.

A generator file is a ``.safetensors`` (tensors only: loading it never executes code, unlike a
pickle) whose header metadata holds :class:`ModelConfig` as JSON under the key ``vs_colorgan``.
Exported ``.onnx`` files carry the same JSON in their ``metadata_props`` (see ``export/``).
Files are written atomically (temporary file + rename), so a crash never leaves half a model.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .networks import GENERATORS, build_generator

METADATA_KEY = "vs_colorgan"
FORMAT_VERSION = 1
DEFAULT_MODEL = Path(__file__).parent / "models" / "default.safetensors"
DEFAULT_ONNX = DEFAULT_MODEL.with_suffix(".onnx")


# read once at import: os.umask can only be read by setting it, which is not thread-safe later on
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class ModelFileError(ValueError):
    """A model file is missing, unreadable, truncated or not one of ours."""


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Everything needed to rebuild a generator and feed it, stored inside every model file."""

    arch: str  # a key of vs_colorgan.networks.GENERATORS
    width: int = 64  # encoder base width (64 = torchvision's ResNet-18)
    render_size: int = 256  # short side the model was trained for; the filter's default
    preset: str = ""  # training preset that produced it
    l_scale: float = 50.0  # normalisation, see vs_colorgan.color
    ab_scale: float = 110.0
    confidence: bool = False  # U-Net with a confidence head (3rd output channel), see networks.calibrate
    chroma_gain: float = 1.0  # calibration applied in the network's forward (fitted on validation photos)
    confidence_tau: float = 0.0
    format_version: int = FORMAT_VERSION

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return int(GENERATORS[self.arch].size_multiple)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelConfig:
        try:
            raw = json.loads(text)
            fields = {f.name for f in dataclasses.fields(cls)}
            cfg = cls(**{k: v for k, v in raw.items() if k in fields})
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{source}: unreadable vs_colorgan metadata ({e})") from None
        if cfg.arch not in GENERATORS:
            raise ModelFileError(f"{source}: unknown architecture {cfg.arch!r}; known: {sorted(GENERATORS)}")
        if cfg.format_version > FORMAT_VERSION:
            raise ModelFileError(f"{source}: model format {cfg.format_version} is newer than this vs_colorgan reads")
        return cfg


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; on any error remove the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp (and some writers, e.g. safetensors) leave 0600: make it an ordinary file for the umask
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_generator(path: str | os.PathLike, model: nn.Module, config: ModelConfig) -> None:
    """Write ``model``'s weights and ``config`` to a ``.safetensors`` file, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={METADATA_KEY: config.to_json()}))


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The :class:`ModelConfig` stored in a ``.safetensors`` or ``.onnx`` generator file."""
    path = Path(path)
    _check_file(path)
    if path.suffix == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # onnx raises several types for damaged files
            raise ModelFileError(f"{path}: not a readable ONNX file ({e})") from None
        meta = {p.key: p.value for p in proto.metadata_props}
    else:
        meta = _safetensors_metadata(path)
    if METADATA_KEY not in meta:
        raise ModelFileError(f"{path}: no vs_colorgan metadata; not a model written by colorgan-train or colorgan-export")
    return ModelConfig.from_json(meta[METADATA_KEY], str(path))


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # SafetensorError for truncated/foreign files
        raise ModelFileError(f"{path}: not a readable .safetensors file, truncated or of another kind ({e})") from None


def resolve_generator_path(path: str | os.PathLike) -> Path:
    """A generator file, or ``RUN/generator.safetensors`` for a training run folder ``RUN``."""
    path = Path(path)
    if path.is_dir():
        gen = path / "generator.safetensors"
        if not gen.is_file():
            raise ModelFileError(f"{path} is a folder without generator.safetensors; pass a training run folder "
                                 f"or a generator .safetensors file")
        return gen
    if path.suffix == ".onnx":
        raise ModelFileError(f"{path} is already an ONNX file; pass the generator .safetensors it came from")
    return path


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Rebuild the generator stored in ``path`` (eval mode, on ``device``) and return it with its config.

    >>> model, cfg = load_generator(DEFAULT_MODEL)
    """
    from safetensors.torch import load_file

    path = Path(path)
    cfg = read_config(path)
    if path.suffix == ".onnx":
        raise ModelFileError(f"{path}: an ONNX file runs on the ORT backend, not the torch one")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as e:
        raise ModelFileError(f"{path}: tensors unreadable, the file is truncated or damaged ({e})") from None
    model = build_generator(cfg.arch, cfg.width, confidence=cfg.confidence, chroma_gain=cfg.chroma_gain,
                            confidence_tau=cfg.confidence_tau)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit a {cfg.arch} of width {cfg.width}: {e}") from None
    return model.to(device).eval(), cfg
