"""Inference backends: the generator run by PyTorch (CPU or CUDA) or by ONNX Runtime (CPU, CUDA, TensorRT).

Both take ``L_norm`` as a float32 tensor (1, 1, h, w) on :attr:`Runner.device` and return ``ab_norm``
(1, 2, h, w) float32 on the same device; batch size is always 1 so a frame's result never depends on
which other frames happen to be processed with it. ``num_streams`` inference slots are taken in turn
(HolyWu's vs-realesrgan pattern); on CUDA each slot has its own stream and is synchronised before the
result is handed back, so callers may move it to numpy at once.

Model files never execute code when loaded: ``.safetensors`` via :func:`vs_colorgan.model_io.load_generator`
(strict state-dict loading), ``.onnx`` via ONNX Runtime with its :class:`~vs_colorgan.model_io.ModelConfig`
read from the metadata by :func:`vs_colorgan.model_io.read_config`.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse as fuse_conv_bn

from .errors import ColorizeError
from .model_io import DEFAULT_MODEL, ModelConfig, ModelFileError, load_generator, read_config
from .threads import openmp_threads

log = logging.getLogger("vs_colorgan")

BackendName = Literal["torch", "ort"]
MAX_STREAMS = 16
_DEVICE_RE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


@dataclass(frozen=True, kw_only=True)
class BackendSettings:
    """A resolved backend choice (what :func:`choose_backend` returns); derive variants with ``dataclasses.replace``.

    >>> BackendSettings(backend="torch", device="cuda:0", fp16=True)
    """

    backend: BackendName = "torch"
    device: str = "cpu"  # "cpu" or "cuda:N"
    fp16: bool = False  # torch: half weights; ort: TensorRT fp16 engines
    num_streams: int = 1  # concurrent inference slots (CUDA: one stream each)
    tensorrt: bool = False  # ort on CUDA: TensorrtExecutionProvider first
    # torch: NHWC memory format. On CUDA faster convolutions on tensor cores; on the CPU oneDNN's convolutions,
    # depthwise ones above all: the bundled EfficientNet-Lite0 U-Net at 128x224 on one core 24.5 -> 21.5 ms, the
    # previous ResNet-18 one 22 -> 14-19 ms
    channels_last: bool = True

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


class Runner(Protocol):
    config: ModelConfig
    device: torch.device
    settings: BackendSettings

    def infer(self, l_norm: torch.Tensor) -> torch.Tensor: ...


def _ort_providers() -> list[str] | None:
    """ONNX Runtime's available providers, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return list(ort.get_available_providers())


def model_paths(model: str | os.PathLike | None) -> tuple[Path, Path | None, Path | None]:
    """``model`` -> (the path as given, the .safetensors to use or None, the .onnx to use or None).

    A ``.safetensors`` and an ``.onnx`` with the same stem in the same folder are the same model in
    two forms; either may be given.
    """
    if model is None:
        given = DEFAULT_MODEL
        if not given.is_file():
            raise ColorizeError(
                f"\"model\" was not given and the bundled default model {str(given)!r} is missing; "
                "pass model=\"path/to/generator.safetensors\" (or .onnx), e.g. a training run's generator.safetensors"
            )
    else:
        if not isinstance(model, (str, os.PathLike)):
            raise ColorizeError(f"\"model\" must be a path to a .safetensors or .onnx file, or None, not {model!r}")
        if not str(model).strip():
            raise ColorizeError("\"model\" must be a path to a .safetensors or .onnx file, or None (the bundled "
                                f"model), not an empty string {str(model)!r}")
        given = Path(model)
    if given.is_dir():
        inside = given / "generator.safetensors"
        hint = f"; it holds a generator: model={str(inside)!r}" if inside.is_file() else ""
        raise ColorizeError(f"\"model\" must be a .safetensors or .onnx file, not the folder {str(given)!r}{hint}")
    if given.suffix not in (".safetensors", ".onnx"):
        raise ColorizeError(f"\"model\" must be a .safetensors or .onnx file, not {str(given)!r}")
    if not given.is_file():
        raise ColorizeError(f"\"model\" file {str(given)!r} does not exist")
    st, onnx = given.with_suffix(".safetensors"), given.with_suffix(".onnx")
    return given, (st if st.is_file() else None), (onnx if onnx.is_file() else None)


SOURCE_KEY = "vs_colorgan.source_sha256"  # written by colorgan-export (export.onnx_export.SOURCE_KEY)


def sha256_file(path: str | os.PathLike) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks (model files, exported sources, rendered chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered per (path, size, mtime): each colorize call checks the bundled pair."""
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def onnx_matches(onnx: Path, st: Path) -> tuple[bool, str]:
    """Whether ``onnx`` was exported from ``st`` (its sibling .safetensors), and why not.

    ``colorgan-export`` records the source's sha256 in the ONNX metadata: it must equal ``st``'s. A file
    without the record (written by ``export_onnx`` directly) counts as exported from ``st`` unless ``st``
    is newer, which means the model was retrained or replaced after the export.
    """
    import onnx as onnx_lib

    try:
        proto = onnx_lib.load(str(onnx), load_external_data=False)
    except Exception as e:  # damaged: say so (load_runner would fail on it later anyway)
        return False, f"{onnx.name} is not a readable ONNX file ({e})"
    recorded = next((p.value for p in proto.metadata_props if p.key == SOURCE_KEY), None)
    if recorded is not None:
        if recorded == file_sha256(st):
            return True, ""
        return False, (f"{onnx.name} was exported from another {st.name} (sha256 {recorded[:12]}…, this one is "
                       f"{file_sha256(st)[:12]}…)")
    if st.stat().st_mtime > onnx.stat().st_mtime:
        return False, f"{onnx.name} records no source hash and is older than {st.name}"
    return True, ""


def _check_device(device: Any) -> str:
    if not isinstance(device, str) or not (device == "auto" or _DEVICE_RE.match(device)):
        raise ColorizeError(f"\"device\" must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", not {device!r}")
    return device


def _resolve_device(device: str, *, cuda: bool, unavailable: Callable[[str], str]) -> str:
    """``"auto"`` -> ``"cuda:0"`` when the runtime sees CUDA (``cuda``), else ``"cpu"``; ``"cuda"`` /
    ``"cuda:N"`` -> ``"cuda:N"``, or :class:`ColorizeError` with ``unavailable(device)`` when it does not;
    anything else as given. Shared by both backends, which differ in how they see CUDA and what they advise."""
    if device == "auto":
        return "cuda:0" if cuda else "cpu"
    if not device.startswith("cuda"):
        return device
    if not cuda:
        raise ColorizeError(unavailable(device))
    return f"cuda:{int(device.partition(':')[2] or 0)}"


def choose_backend(*, model: str | os.PathLike | None = None, backend: str = "auto", device: str = "auto",
                   fp16: bool = False, num_streams: int = 1, tensorrt: bool = False) -> tuple[BackendSettings, Path]:
    """Validate the backend options and pick the runtime; returns the settings and the model file it loads.

    ``backend="auto"`` picks the fastest available: PyTorch on CUDA when ``torch.cuda`` works, else
    ONNX Runtime when an ``.onnx`` is given or sits next to the ``.safetensors`` (CUDA provider if present),
    else PyTorch on the CPU. Raises :class:`ColorizeError` saying what is missing and how to get it.
    """
    device = _check_options(backend=backend, device=device, fp16=fp16, num_streams=num_streams, tensorrt=tensorrt)
    given, st, onnx = model_paths(model)
    providers = _ort_providers()
    torch_cuda = torch.cuda.is_available()
    ort_cuda = providers is not None and "CUDAExecutionProvider" in providers
    if fp16 and device == "auto" and not (torch_cuda or ort_cuda):
        raise ColorizeError("\"fp16\" needs a CUDA GPU, and neither torch nor onnxruntime sees one here; "
                            "use fp16=False (the default) on the CPU")
    if onnx is not None and st is not None and given.suffix == ".safetensors":
        onnx = _sibling_onnx(onnx, st, backend)
    if backend == "auto":
        if tensorrt and onnx is not None:
            backend = "ort"
        elif torch_cuda and st is not None and device != "cpu":
            backend = "torch"
        elif onnx is not None and providers is not None and (device in ("auto", "cpu") or ort_cuda):
            backend = "ort"
        else:
            backend = "torch" if st is not None else "ort"
    if backend == "torch":
        return _torch_settings(given, st, device=device, fp16=fp16, num_streams=num_streams, tensorrt=tensorrt,
                               cuda=torch_cuda), st
    return _ort_settings(given, onnx, providers, device=device, fp16=fp16, num_streams=num_streams,
                         tensorrt=tensorrt, cuda=ort_cuda), onnx


def _check_options(*, backend: Any, device: Any, fp16: Any, num_streams: Any, tensorrt: Any) -> str:
    """The backend options' types and ranges, before anything is looked up; returns the device."""
    if backend not in ("auto", "torch", "ort"):
        raise ColorizeError(f"\"backend\" must be \"auto\", \"torch\" or \"ort\", not {backend!r}")
    device = _check_device(device)
    for name, value in (("fp16", fp16), ("tensorrt", tensorrt)):
        if not isinstance(value, bool):
            raise ColorizeError(f"\"{name}\" must be True or False, not {value!r}")
    if isinstance(num_streams, bool) or not isinstance(num_streams, int) or not 1 <= num_streams <= MAX_STREAMS:
        raise ColorizeError(f"\"num_streams\" must be an integer between 1 and {MAX_STREAMS}, not {num_streams!r}")
    if fp16 and device == "cpu":
        raise ColorizeError("\"fp16\" needs a CUDA device; on the CPU use fp16=False (the default)")
    return device


def _sibling_onnx(onnx: Path, st: Path, backend: str) -> Path | None:
    """An .onnx lying next to the named .safetensors is used only if it was exported from it."""
    ok, why = onnx_matches(onnx, st)
    if ok:
        return onnx
    if backend == "ort":
        raise ColorizeError(f"backend=\"ort\" would run {str(onnx)!r}, but {why}; re-export it "
                            f"(colorgan-export {st} -o {onnx}) or use backend=\"torch\"")
    log.warning("vs_colorgan: not using %s: %s; running %s with torch (re-export with colorgan-export "
                "to use ONNX Runtime)", onnx, why, st.name)
    return None


def _torch_settings(given: Path, st: Path | None, *, device: str, fp16: bool, num_streams: int, tensorrt: bool,
                    cuda: bool) -> BackendSettings:
    if tensorrt:
        raise ColorizeError("\"tensorrt\" needs backend=\"ort\" (ONNX Runtime's TensorRT provider), not backend=\"torch\"")
    if st is None:
        raise ColorizeError(
            f"backend=\"torch\" loads a .safetensors generator, but \"model\" is {str(given)!r} and "
            f"{given.with_suffix('.safetensors').name} is not next to it; use backend=\"ort\" for ONNX files"
        )
    requested = device
    device = _resolve_device(device, cuda=cuda, unavailable=lambda asked: (
        f"\"device\" {asked!r} is not available: this torch ({torch.__version__}) sees no CUDA GPU; "
        "install a CUDA build of torch (https://pytorch.org/get-started/locally/) or use device=\"cpu\""))
    if requested.startswith("cuda") and int(device.partition(":")[2]) >= torch.cuda.device_count():
        raise ColorizeError(f"\"device\" must name one of the {torch.cuda.device_count()} CUDA GPUs, not {requested!r}")
    if fp16 and device == "cpu":
        raise ColorizeError("\"fp16\" needs a CUDA device; on the CPU use fp16=False (the default)")
    return BackendSettings(backend="torch", device=device, fp16=fp16, num_streams=num_streams)


def _ort_settings(given: Path, onnx: Path | None, providers: list[str] | None, *, device: str, fp16: bool,
                  num_streams: int, tensorrt: bool, cuda: bool) -> BackendSettings:
    if providers is None:
        raise ColorizeError("backend=\"ort\" needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu for CUDA)")
    if onnx is None:
        raise ColorizeError(
            f"backend=\"ort\" loads an .onnx generator, but \"model\" is {str(given)!r} and "
            f"{given.with_suffix('.onnx').name} is not next to it; export one with "
            "export.onnx_export.export_onnx (colorgan-export) or use backend=\"torch\""
        )
    if tensorrt:
        if "TensorrtExecutionProvider" not in providers:
            raise ColorizeError(
                "\"tensorrt\" needs onnxruntime's TensorrtExecutionProvider (onnxruntime-gpu with TensorRT "
                f"installed: pip install onnxruntime-gpu tensorrt); available: {', '.join(providers)}"
            )
        if device == "cpu":
            raise ColorizeError("\"tensorrt\" needs a CUDA device, not device=\"cpu\"")
    device = _resolve_device(device, cuda=cuda, unavailable=lambda asked: (
        f"\"device\" {asked!r} is not available to onnxruntime (providers: {', '.join(providers)}); "
        "pip install onnxruntime-gpu (in place of onnxruntime) with a CUDA GPU, or use device=\"cpu\""))
    if fp16 and not tensorrt:
        raise ColorizeError("\"fp16\" with backend=\"ort\" needs tensorrt=True (fp16 TensorRT engines); the .onnx is fp32")
    return BackendSettings(backend="ort", device=device, fp16=fp16, num_streams=num_streams, tensorrt=tensorrt)


class _Slots:
    """``n`` inference slots taken in turn; ``payload(i)`` builds slot ``i``'s state (e.g. a CUDA stream)."""

    def __init__(self, n: int, payload) -> None:
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(n):
            self._free.put(payload(i))

    def take(self):
        return self._free.get()

    def give(self, slot) -> None:
        self._free.put(slot)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each batch norm folded into the convolution before it.

    At inference a batch norm is a per-channel affine map, so it merges into the preceding convolution's weights
    and bias (Jacob et al. 2018, section 3.2; ONNX Runtime does the same to the exported graph). Run one by one in
    eager PyTorch they cost a pass over every feature map each: folding the 58 of the EfficientNet-Lite0 U-Net took
    its CPU forward at 128x224 from 14.3 to 9.9 ms (two threads, channels-last, median of 40). ``torch.fx``'s
    ``fuse`` traces the forward, so only pairs where the convolution's output goes to the batch norm alone are
    folded. Outputs agree within float rounding
    (tests/test_backends.py). A network that ``torch.fx`` cannot trace (control flow on tensor values; none of
    ours) is returned as it is: slower, never wrong.
    """
    try:
        return fuse_conv_bn(model.eval())
    except Exception as e:  # symbolic tracing raises several types (TraceError, TypeError, RuntimeError ...)
        log.debug("vs_colorgan: batch norms left unfolded (%s: %s)", type(e).__name__, e)
        return model.eval()


class TorchRunner:
    """The generator in PyTorch: fp32 on the CPU; on CUDA optionally fp16; batch norms folded (:func:`fold_batch_norms`);
    channels-last; one stream per slot."""

    def __init__(self, path: str | os.PathLike, settings: BackendSettings) -> None:
        self.settings = settings
        self.device = torch.device(settings.device)
        model, self.config = load_generator(path, device="cpu")
        model = fold_batch_norms(model)  # in fp32, before any cast to fp16
        cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if settings.fp16 else torch.float32
        self.channels_last = settings.channels_last
        model = model.to(device=self.device, dtype=self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.eval().requires_grad_(False)
        self.cpu_threads = _cpu_inference_threads()  # the OpenMP team of a CPU inference
        self._slots = _Slots(settings.num_streams, lambda i: torch.cuda.Stream(self.device) if cuda else None)

    @torch.inference_mode()
    def infer(self, l_norm: torch.Tensor) -> torch.Tensor:
        stream = self._slots.take()
        try:
            if stream is None:  # the CPU
                x = l_norm.to(self.device, self.dtype)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with openmp_threads(self.cpu_threads):
                    return self.model(x).float().contiguous()
            # the input was made on this thread's current stream: order the slot's stream after it
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                x = l_norm.to(self.device, self.dtype)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                ab = self.model(x).float().contiguous()
            stream.synchronize()  # before anyone touches it (numpy, another stream)
            ab.record_stream(torch.cuda.current_stream(self.device))  # keep the allocator from reusing it early
            return ab
        finally:
            self._slots.give(stream)


def _trt_cache_dir(path: Path, settings: BackendSettings) -> Path:
    """Engine cache folder keyed by everything that built the engine: model bytes, precision, GPU, ORT version."""
    import onnxruntime as ort

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    gpu = "gpu"
    if torch.cuda.is_available():
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(torch.device(settings.device)))
    key = f"{digest}-{'fp16' if settings.fp16 else 'fp32'}-{gpu}-ort{ort.__version__}"
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vs_colorgan" / "tensorrt" / key
    root.mkdir(parents=True, exist_ok=True)
    return root


def _cpu_inference_threads() -> int:
    """Threads of one CPU inference, either backend: one core fewer than the process may run on (its CPU affinity
    where the OS says, else all cores), at least one.

    In a render the look-ahead runs frame n + 1's inference while the callback does frame n's glue and VapourSynth
    decodes and resizes (or other frames are requested), so a pool over every core waited for the core those held.
    Measured on 2 cores, colorize at 480p, alternating rounds: ORT 20.2 fps with 1 thread, 18.5 with 2, 16.8 with
    ORT's default (benchmarks/ort_options.py, README "Speed"; at 1080p within noise); torch with the
    EfficientNet-Lite0 U-Net 53.1 fps with 1 OpenMP thread, 38.9 with 2 (benchmarks/models.py). Not measured on
    larger machines.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class OrtRunner:
    """The generator in ONNX Runtime. On CUDA with a CUDA torch, frames stay on the GPU (IO binding)."""

    def __init__(self, path: str | os.PathLike, settings: BackendSettings) -> None:
        import onnxruntime as ort

        path = Path(path)
        self.settings = settings
        self.config = read_config(path)
        cuda = settings.is_cuda
        index = int(settings.device.partition(":")[2] or 0)
        providers: list[Any] = ["CPUExecutionProvider"]
        if cuda:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
            if settings.tensorrt:
                providers.insert(0, ("TensorrtExecutionProvider", {
                    "device_id": index, "trt_fp16_enable": settings.fp16, "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(_trt_cache_dir(path, settings)), "trt_timing_cache_enable": True,
                }))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, but keep them quiet
        # ORT's pool threads spin after each run by default, taking the cores from VapourSynth's threads
        # (zimg, the glue, other frames) that run between inferences; let them sleep instead
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not cuda:
            options.intra_op_num_threads = _cpu_inference_threads()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"{path}: onnxruntime cannot load it ({e})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if (len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or len(outputs[0].shape) != 4
                or inputs[0].shape[1] != 1 or outputs[0].shape[1] != 2):
            got = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
            raise ModelFileError(
                f"{path}: expected one input (N, 1, H, W) and one output (N, 2, H, W) (L_norm -> ab_norm), got {got}"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.io_binding = cuda and torch.cuda.is_available()
        self.device = torch.device(settings.device if self.io_binding else "cpu")
        self._index = index
        self._slots = _Slots(settings.num_streams, lambda i: i)

    @torch.inference_mode()
    def infer(self, l_norm: torch.Tensor) -> torch.Tensor:
        slot = self._slots.take()
        try:
            if not self.io_binding:
                x = l_norm.detach().to("cpu", torch.float32).contiguous().numpy()
                ab = self.session.run([self.output_name], {self.input_name: x})[0]
                return torch.from_numpy(ab).to(self.device)
            x = l_norm.to(self.device, torch.float32).contiguous()
            n, _, h, w = x.shape
            ab = torch.empty((n, 2, h, w), device=self.device, dtype=torch.float32)
            binding = self.session.io_binding()
            binding.bind_input(self.input_name, "cuda", self._index, np.float32, tuple(x.shape), x.data_ptr())
            binding.bind_output(self.output_name, "cuda", self._index, np.float32, tuple(ab.shape), ab.data_ptr())
            torch.cuda.current_stream(self.device).synchronize()  # x is written before ORT's stream reads it
            self.session.run_with_iobinding(binding)
            binding.synchronize_outputs()
            return ab
        finally:
            self._slots.give(slot)


def load_runner(settings: BackendSettings, path: str | os.PathLike) -> Runner:
    """Build the runner for ``settings`` (from :func:`choose_backend`); raises ModelFileError for bad files."""
    runner: Runner = TorchRunner(path, settings) if settings.backend == "torch" else OrtRunner(path, settings)
    log.info("vs_colorgan: %s backend on %s%s, model %s (%s, width %d)", settings.backend, settings.device,
             " fp16" if settings.fp16 else "", path, runner.config.arch, runner.config.width)
    return runner


class RunnerCache:
    """Runners kept for reuse, keyed by the settings, the model file's path and its sha256 (a file replaced
    under the same name is loaded anew). A long-lived process that colourizes many clips with the same model,
    such as a cluster render's worker, then loads the model once instead of once per clip."""

    def __init__(self) -> None:
        self._runners: dict[tuple[BackendSettings, str, str], Runner] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, settings: BackendSettings, path: str | os.PathLike) -> Runner:
        key = (settings, str(Path(path).resolve()), file_sha256(Path(path)))
        with self._lock:  # one load per key even when two threads ask at once
            if key not in self._runners:
                self._runners[key] = load_runner(settings, path)
                self.loads += 1
            return self._runners[key]


_shared_runners: RunnerCache | None = None


def share_runners() -> RunnerCache:
    """From now on, :func:`get_runner` in this process reuses runners (see :class:`RunnerCache`); returns the
    cache (its ``loads`` count the models loaded). Idempotent."""
    global _shared_runners
    if _shared_runners is None:
        _shared_runners = RunnerCache()
    return _shared_runners


def get_runner(settings: BackendSettings, path: str | os.PathLike) -> Runner:
    """The runner ``colorize`` uses: shared after :func:`share_runners`, else a fresh :func:`load_runner`
    (a script's runners are freed with its clips)."""
    cache = _shared_runners
    return cache.get(settings, path) if cache is not None else load_runner(settings, path)
