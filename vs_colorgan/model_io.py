"""Generator files: what they hold, how they are written and how they are read back.

A generator file is a ``.safetensors`` (tensors only: loading it never executes code, unlike a
pickle) whose header metadata holds :class:`ModelConfig` as JSON under the key ``vs_colorgan``.
Exported ``.onnx`` files carry the same JSON in their ``metadata_props`` (see ``export/``).
Files are written atomically (temporary file + rename), so a crash never leaves half a model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .errors import ColorizeError
from .networks import ANNEAL_TEMPERATURE, ENCODERS, GENERATORS, HEADS, PADDINGS, build_generator

METADATA_KEY = "vs_colorgan"
FORMAT_VERSION = 1
DEFAULT_MODEL = Path(__file__).parent / "models" / "default.safetensors"
DEFAULT_ONNX = DEFAULT_MODEL.with_suffix(".onnx")
# The render grid's short side (the filter's render_size, a model's trained size, the vs-mlrt export's):
# defined here, the lowest layer that needs it, and imported by pipeline/filter/export.
MIN_RENDER_SIZE = 64
MAX_RENDER_SIZE = 2048
MAX_WIDTH = 256  # generator base width: 64 is the paper's; 256 is already ~1 GB of fp32 weights
MAX_ADAPT_BANK = 65536  # key features of an adapted model's gate (10 keys at 480p hold ~2,000)


def check_render_size(render_size: object, multiple: int, *, name: str = "\"render_size\"") -> int:
    """``render_size`` if it is a render size a model of size multiple ``multiple`` runs at: an integer multiple
    of it between :data:`MIN_RENDER_SIZE` and :data:`MAX_RENDER_SIZE`; else :class:`ColorizeError` naming the
    argument as ``name`` (``"--render-size"`` for a command line). The one rule of colorize and the tools.

    >>> check_render_size(256, 16)
    256
    """
    if isinstance(render_size, bool) or not isinstance(render_size, int) or render_size % multiple \
            or not MIN_RENDER_SIZE <= render_size <= MAX_RENDER_SIZE:
        raise ColorizeError(f"{name} must be a multiple of {multiple} (the model's size multiple) "
                            f"between {MIN_RENDER_SIZE} and {MAX_RENDER_SIZE}, not {render_size!r}")
    return render_size


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
    adapt_bank: int = 0  # "unet-adapted" (colorgan-adapt): keyframe features in the gate's bank
    adapt_encoder: bool = False  # "unet-adapted": its film decoder has its own (partly adapted) encoder
    # "unet-adapted": features of featureless synthetic frames the gate weighs the keys' against (0: files
    # made before the contrast gate, whose gate is the plain similarity to the keys)
    adapt_generic: int = 0
    padding: str = "zeros"  # how the convolutions pad borders (networks.PADDINGS); files without it are "zeros"
    encoder: str = "resnet18"  # the U-Net's encoder (networks.ENCODERS); files without it are "resnet18"
    head: str = "regression"  # the U-Net's output head (networks.HEADS); files without it are "regression"
    anneal_temperature: float = ANNEAL_TEMPERATURE  # the "bins" head's annealed-mean temperature
    format_version: int = FORMAT_VERSION

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return int(GENERATORS[self.arch].size_multiple)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        # keys added after model files were in use are written only where they say something: a file of a kind
        # that existed before them is written byte for byte as it was (the bundled model's recipe reproduces it)
        if self.head == "regression":
            del d["head"]
        if self.head != "bins":
            del d["anneal_temperature"]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelConfig:
        """Parse and validate stored metadata; raises :class:`ModelFileError` naming ``source`` and the key.

        Everything is checked against :data:`CONFIG_FIELDS` before anything is built from it, so a
        hand-edited or damaged file fails here, not as a TypeError or a huge allocation later on.
        """
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise ModelFileError(f"{source}: unreadable vs_colorgan metadata, not JSON ({e})") from None
        if not isinstance(raw, dict):
            raise ModelFileError(f"{source}: vs_colorgan metadata must be a JSON object, not {type(raw).__name__}")
        version = raw.get("format_version", FORMAT_VERSION)
        if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
            newer = _is_int(version) and version > FORMAT_VERSION
            raise ModelFileError(f"{source}: model format_version must be an integer from 1 to {FORMAT_VERSION}, "
                                 f"not {version!r}" + ("; it was written by a newer vs_colorgan" if newer else ""))
        unknown = sorted(set(raw) - set(CONFIG_FIELDS))
        if unknown:
            raise ModelFileError(f"{source}: unknown key(s) {unknown} in the vs_colorgan metadata; known: "
                                 f"{sorted(CONFIG_FIELDS)} (hand-edited, or written by another program?)")
        if "arch" not in raw:
            raise ModelFileError(f"{source}: the vs_colorgan metadata has no \"arch\"")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            rule = CONFIG_FIELDS[key]
            if not rule.check(value):
                raise ModelFileError(f"{source}: metadata \"{key}\" must be {rule.accepted}, not {value!r}")
            values[key] = rule.cast(value)
        # fields that another version of this table knows but this ModelConfig does not hold yet are dropped
        names = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in values.items() if k in names})
        if (cfg.arch == "unet-adapted") != (cfg.adapt_bank > 0):
            raise ModelFileError(f"{source}: metadata \"adapt_bank\" must be at least 1 for an \"unet-adapted\" "
                                 f"generator and 0 for any other, not {cfg.adapt_bank} (arch {cfg.arch!r})")
        if cfg.arch != "unet-adapted" and cfg.adapt_generic:
            raise ModelFileError(f"{source}: metadata \"adapt_generic\" must be 0 for a generator that is not "
                                 f"\"unet-adapted\", not {cfg.adapt_generic} (arch {cfg.arch!r})")
        if cfg.encoder != "resnet18" and cfg.arch not in ("unet", "unet-adapted"):
            raise ModelFileError(f"{source}: metadata \"encoder\" must be \"resnet18\" for a {cfg.arch} generator "
                                 f"(only the U-Net takes another encoder), not {cfg.encoder!r}")
        if cfg.head != "regression" and cfg.arch not in ("unet", "unet-adapted"):
            raise ModelFileError(f"{source}: metadata \"head\" must be \"regression\" for a {cfg.arch} generator "
                                 f"(only the U-Net has others), not {cfg.head!r}")
        if cfg.head == "bins" and not cfg.confidence:
            raise ModelFileError(f"{source}: metadata \"head\" 'bins' needs \"confidence\" true (its distribution "
                                 f"is the confidence)")
        multiple = cfg.size_multiple
        if cfg.render_size % multiple:
            raise ModelFileError(f"{source}: metadata \"render_size\" must be a multiple of {multiple} (the "
                                 f"{cfg.arch} generator's size multiple), not {cfg.render_size}")
        return cfg


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Rule(NamedTuple):
    """How one metadata key is checked: ``check(value)``, the words for what is accepted, and ``cast``
    applied to a value that passed (JSON may write 50 for the float 50.0)."""

    check: Callable[[Any], bool]
    accepted: str
    cast: Callable[[Any], Any] = lambda v: v


def _int_in(lo: int, hi: int, *, even: bool = False) -> Rule:
    return Rule(lambda v: _is_int(v) and lo <= v <= hi and not (even and v % 2),
                f"{'an even' if even else 'an'} integer from {lo} to {hi}")


def _real_in(lo: float, hi: float, *, positive: bool = False) -> Rule:
    if positive:
        return Rule(lambda v: _is_real(v) and lo < v <= hi, f"a number above {lo:g} and at most {hi:g}", float)
    return Rule(lambda v: _is_real(v) and lo <= v <= hi, f"a number from {lo:g} to {hi:g}", float)


# Every key a model file's metadata may hold: name -> (check, what is accepted). A new ModelConfig field
# needs a row here (tests/test_model_io.py checks that every field has one); keys listed here but not (yet)
# fields of ModelConfig are accepted and ignored.
CONFIG_FIELDS: dict[str, Rule] = {
    "arch": Rule(lambda v: isinstance(v, str) and v in GENERATORS, f"one of {sorted(GENERATORS)}"),
    "width": _int_in(4, MAX_WIDTH, even=True),
    "render_size": _int_in(MIN_RENDER_SIZE, MAX_RENDER_SIZE),
    "preset": Rule(lambda v: isinstance(v, str) and len(v) <= 200, "a string of at most 200 characters"),
    "l_scale": _real_in(0.0, 1000.0, positive=True),
    "ab_scale": _real_in(0.0, 1000.0, positive=True),
    "format_version": _int_in(1, FORMAT_VERSION),
    # calibration fields of newer models
    "confidence": Rule(lambda v: isinstance(v, bool), "true or false"),
    "chroma_gain": _real_in(0.0, 4.0),
    "confidence_tau": _real_in(0.0, 4.0),
    "padding": Rule(lambda v: isinstance(v, str) and v in PADDINGS, f"one of {list(PADDINGS)}"),
    "encoder": Rule(lambda v: isinstance(v, str) and v in ENCODERS, f"one of {list(ENCODERS)}"),
    "head": Rule(lambda v: isinstance(v, str) and v in HEADS, f"one of {list(HEADS)}"),
    "anneal_temperature": _real_in(0.01, 10.0),
    # colorgan-adapt's models (arch "unet-adapted")
    "adapt_bank": _int_in(0, MAX_ADAPT_BANK),
    "adapt_encoder": Rule(lambda v: isinstance(v, bool), "true or false"),
    "adapt_generic": _int_in(0, MAX_ADAPT_BANK),
}


def clear_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that an interrupted :func:`atomic_write` to ``path`` left behind.

    A process killed between creating its temporary and renaming it (SIGKILL, power loss) cannot clean up.
    The temporary's name holds the writer's process id, so only files whose writer is gone are removed:
    another process writing the same file right now keeps its own. Returns the removed paths.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        # ".NAME.PID.RANDOM.tmp" (mkstemp's random part has no dots); ".NAME.RANDOM.tmp" from before the pid
        # was added; anything with more dots is the temporary of another file ("NAME.bak", say)
        parts = tmp.name[len(path.name) + 2: -len(".tmp")].split(".")
        if len(parts) > 2 or (len(parts) == 2 and not parts[0].isdigit()):
            continue
        if len(parts) == 2 and _alive(int(parts[0])):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A hidden temporary beside ``path`` to write; renamed onto ``path`` (after an fsync) when the block ends,
    removed when it raises (Ctrl-C and SIGTERM included), so ``path`` never exists half-written.

    >>> with atomic_path("out/colour.mkv") as tmp:
    ...     encode(tmp)

    The temporaries that killed earlier writers of ``path`` left are removed first
    (:func:`clear_stale_temporaries`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_temporaries(path)  # what a killed earlier writer of this file left (e.g. colorgan-export, kill -9)
    # the pid in the name lets clear_stale_temporaries tell a killed writer's leftovers from a live one's
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp (and some writers, e.g. safetensors) leave 0600: make it an ordinary file for the umask
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """``path`` holds ``text`` in full or is left as it was (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_generator(path: str | os.PathLike, model: nn.Module, config: ModelConfig,
                   metadata: Mapping[str, str] | None = None) -> None:
    """Write ``model``'s weights and ``config`` to a ``.safetensors`` file, atomically.

    ``metadata``: more header entries (string values) beside :data:`METADATA_KEY`, e.g. what ``colorgan-adapt``
    records of its base model; readers of the model ignore them."""
    from safetensors.torch import save_file

    extra = dict(metadata or {})
    if METADATA_KEY in extra:
        raise ValueError(f"save_generator: metadata must not hold {METADATA_KEY!r}, the config's own key")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={**extra, METADATA_KEY: config.to_json()}))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """All header entries of a ``.safetensors`` generator file (the config's JSON and any others)."""
    path = Path(path)
    _check_file(path)
    return _safetensors_metadata(path)


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


def generator_for(cfg: ModelConfig) -> nn.Module:
    """An untrained generator built as a file of config ``cfg`` is loaded: every field that shapes the network
    (architecture, encoder, width, head, calibration, padding, an adapted model's bank) passed to ``build_generator``."""
    return build_generator(cfg.arch, cfg.width, confidence=cfg.confidence, chroma_gain=cfg.chroma_gain,
                           confidence_tau=cfg.confidence_tau, padding=cfg.padding, adapt_bank=cfg.adapt_bank,
                           adapt_encoder=cfg.adapt_encoder, adapt_generic=cfg.adapt_generic, encoder=cfg.encoder,
                           head=cfg.head, anneal_temperature=cfg.anneal_temperature)


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
    model = generator_for(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit a {cfg.arch} of width {cfg.width}: {e}") from None
    return model.to(device).eval(), cfg
