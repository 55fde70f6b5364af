"""The training loop: orchestrates a set-up, data, logging, validation pictures and checkpoints.

Runs on one CPU/GPU, or data-parallel under ``torchrun`` (env:// rendezvous, gloo on CPU, nccl on
CUDA): each process trains on its own shard (``DistributedSampler``), ``--batch-size`` is per process,
and only rank 0 logs, validates and writes files.

>>> from vs_colorgan.training.options import resolve
>>> run(resolve("unet", {"data": ["data/train"], "out": "runs/unet", "steps": 1000}))
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from vs_colorgan.color import merge_lab
from vs_colorgan.model_io import atomic_write, save_generator

from . import checkpoint, rebalance
from .data import ColorDataset, build_datasets
from .options import TrainOptions, validate
from .setups import Setup, build_setup, lr_at

EXIT_OK, EXIT_NONFINITE, EXIT_INTERRUPTED = 0, 3, 130


class NonFiniteLoss(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"colorgan-train: {msg}", file=sys.stderr, flush=True)


def say(msg: str) -> None:
    """A line on stderr that does not break the progress bar (tqdm.write defaults to stdout)."""
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


# ---- distributed helpers

def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(name: str, local_rank: int, world: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"colorgan-train: \"device\" {name!r} asked for but torch sees no CUDA GPU (torch {torch.__version__}); use --device cpu")
        if world > 1 and name == "cuda":
            return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("colorgan-train: \"device\" 'mps' asked for but not available; use --device cpu")
    return torch.device(name)


class StepSampler(DistributedSampler):
    """Endless stream of this rank's indices, epoch after epoch, starting at a given sample position.

    Each epoch is ``DistributedSampler``'s shuffle for that epoch (seeded by seed + epoch, padded to
    a multiple of the world size), so the order is a pure function of the step: resuming at step s
    continues exactly where the interrupted run would have been. Where the dataset weighs its items
    (``ColorDataset.weights``), an epoch is as many draws with replacement by those weights, seeded the same way.
    """

    def __init__(self, dataset: ColorDataset, *, rank: int, world: int, seed: int, start: int) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = start

    def __iter__(self):
        per_epoch = self.num_samples
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            self.set_epoch(epoch)
            yield from self._epoch()[offset:]
            epoch, offset = epoch + 1, 0

    def _epoch(self) -> list[int]:
        weights = getattr(self.dataset, "weights", None)
        if weights is None:
            return list(super().__iter__())
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.multinomial(weights, self.total_size, replacement=True, generator=g).tolist()
        return order[self.rank : self.total_size : self.num_replicas]

    def __len__(self) -> int:  # endless
        return sys.maxsize


# ---- pictures

def _to_uint8(img: torch.Tensor):
    return (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def validate_and_grid(setup: Setup, val: ColorDataset, opts: TrainOptions, device: torch.device) -> tuple[dict[str, float], torch.Tensor | None]:
    """Validation figures (ab L1, RGB PSNR) on the first ``val_batches`` batches, and a gray | predicted | truth grid."""
    if len(val) == 0 or opts.val_batches == 0:
        return {}, None
    g = setup.generator
    was_training = g.training
    g.eval()
    n = min(len(val), opts.val_batches * opts.batch_size)
    l1_sum, psnr_sum, gray_sum, count = 0.0, 0.0, 0.0, 0
    rows = []
    for start in range(0, n, opts.batch_size):
        batch = [val[i] for i in range(start, min(n, start + opts.batch_size))]
        l_norm = torch.stack([b[0] for b in batch]).to(device)
        ab = torch.stack([b[1] for b in batch]).to(device)
        pred = g(l_norm).float()
        l1_sum += (pred - ab).abs().mean(dim=(1, 2, 3)).sum().item()
        rgb_pred, rgb_true = merge_lab(l_norm, pred), merge_lab(l_norm, ab)
        mse = ((rgb_pred - rgb_true) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnr_sum += (10 * torch.log10(1.0 / mse)).sum().item()
        gray = merge_lab(l_norm, torch.zeros_like(ab))  # the baseline a colourizer must beat
        gray_sum += (10 * torch.log10(1.0 / ((gray - rgb_true) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10))).sum().item()
        count += len(batch)
        if len(rows) < 8:
            for i in range(min(len(batch), 8 - len(rows))):
                rows.append(torch.cat([gray[i], rgb_pred[i], rgb_true[i]], dim=2))  # gray | predicted | truth
    g.train(was_training)
    grid = torch.cat(rows, dim=1).cpu() if rows else None
    return {"val_l1": l1_sum / count, "val_psnr": psnr_sum / count, "val_dpsnr": (psnr_sum - gray_sum) / count}, grid


def write_grid(run: Path, step: int, grid: torch.Tensor) -> None:
    from PIL import Image

    img = Image.fromarray(_to_uint8(grid))
    (run / "samples").mkdir(exist_ok=True)
    for path in (run / "samples" / f"val-{step:08d}.png", run / "val_latest.png"):
        atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def plot_losses(run: Path, history: list[dict[str, Any]], pretrain_steps: int) -> None:
    """RUN/loss_curves.png: generator losses, discriminator losses, validation L1 against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for rec in history:
        for k, v in rec.items():
            if k != "step" and isinstance(v, (int, float)) and (k.startswith(("g_", "d_", "val_"))):
                series[k][0].append(rec["step"])
                series[k][1].append(v)
    if not series:
        return
    groups = [("generator", "g_"), ("discriminator / critic", "d_"), ("validation", "val_")]
    groups = [(t, p) for t, p in groups if any(k.startswith(p) for k in series)]
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 3.2 * len(groups)), sharex=True, squeeze=False)
    for ax, (title, prefix) in zip(axes[:, 0], groups):
        # validation PSNR (dB) and L1 (~0.1) differ by two orders: PSNR gets its own axis on the right
        twin = ax.twinx() if prefix == "val_" and "val_psnr" in series else None
        for i, k in enumerate(sorted(series)):
            if k.startswith(prefix):
                target = twin if (twin is not None and k == "val_psnr") else ax
                target.plot(*series[k], label=k, marker="." if prefix == "val_" else None, color=f"C{i % 10}")
        if twin is not None:
            twin.set_ylabel("val_psnr (dB)")
            twin.legend(loc="lower right", fontsize=8)
        if 0 < pretrain_steps:
            ax.axvline(pretrain_steps, color="gray", linestyle="--", linewidth=0.8)
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step (dashed: end of NoGAN pretraining)")
    fig.tight_layout()
    atomic_write(run / "loss_curves.png", lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


# ---- the run

def _load_history(run: Path, upto: int) -> list[dict[str, Any]]:
    path = run / "history.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if rec.get("step", 0) <= upto:
            out.append(rec)
    return out


@dataclass
class TrainResult:
    code: int  # EXIT_OK, EXIT_NONFINITE or EXIT_INTERRUPTED
    step: int  # steps completed
    setup: Setup | None  # the trained set-up (nets, optimisers), for callers and tests


def run(opts: TrainOptions, *, resume: bool = False) -> int:
    """Train according to ``opts`` (resuming from ``opts.out`` when ``resume``); returns an exit code."""
    return train(opts, resume=resume).code


def train(opts: TrainOptions, *, resume: bool = False) -> TrainResult:
    """Like :func:`run`, returning the step reached and the set-up as well."""
    rank, world, local_rank = _dist_env()
    distributed = world > 1
    device = resolve_device(opts.device, local_rank, world)
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    try:
        return _run(opts, resume=resume, rank=rank, world=world, device=device)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


@dataclass
class _State:
    """What the step loop needs, as :func:`_prepare` leaves it."""

    setup: Setup
    train_set: ColorDataset
    val_set: ColorDataset
    step: int
    best: dict[str, Any]


def _prepare(opts: TrainOptions, *, resume: bool, rank: int, world: int, device: torch.device) -> _State:
    """Data, networks and (with ``resume``) the checkpoint's state, in the RNG order exact resumes rely on."""
    run_dir = Path(opts.out)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if not resume and (run_dir / checkpoint.CHECKPOINT_JSON).exists():
        raise ValueError(f"colorgan-train: {str(run_dir)!r} already holds a checkpoint; resume it with --resume {run_dir} or pick another --out")
    validate(opts)

    torch.manual_seed(opts.seed)  # identical initial weights on every rank
    train_set, val_set = build_datasets(opts.data, image_size=opts.image_size, val_fraction=opts.val_fraction,
                                        frames_per_video=opts.frames_per_video, show_progress=rank == 0,
                                        scale_max=opts.scale_max, film_augment=opts.film_augment,
                                        exclude=opts.exclude, colourful_above=opts.colourful_above,
                                        colourful_weight=opts.colourful_weight)
    setup = build_setup(opts, device)
    if opts.rebalance_lambda < 1.0:
        # from the pictures alone (no random draw), so a resumed run computes the same weights
        items = rebalance.evenly(train_set.items)
        prior = rebalance.ab_prior(map(train_set.load_item, items), total=len(items), show_progress=rank == 0)
        setup.rebalance = rebalance.rebalance_table(prior, opts.rebalance_lambda)
        if rank == 0:
            used = setup.rebalance[prior.flatten() > 0]
            log(f"colour rebalancing (lambda {opts.rebalance_lambda:g}): colours of {len(items)} pictures, "
                f"{len(used)} ab bins in use, pixel weights {float(used.min()):.2f}-{float(used.max()):.2f}")
    step, best = 0, {"best_val_l1": None, "best_step": None}
    if resume:
        record = checkpoint.load(run_dir, nets=setup.nets, optimizers=setup.optimizers)
        step = int(record["step"])
        best = {"best_val_l1": record.get("best_val_l1"), "best_step": record.get("best_step")}
        # Options may have changed on resume (e.g. a longer --steps): the optimisers follow them.
        for opt, betas in ((setup.opt_g_pre, opts.pretrain_betas), (setup.opt_g, opts.g_betas), (setup.opt_d, opts.d_betas)):
            for grp in opt.param_groups:
                grp["betas"] = tuple(betas)
        if rank == 0:
            log(f"resumed {run_dir} at step {step} (phase {record['phase']}); training to step {opts.steps}")
    if rank > 0 or not resume:
        torch.manual_seed(opts.seed * 1000 + 7919 * rank + step)  # per-rank augmentation stream
    if world > 1:
        setup.wrap_ddp([device.index] if device.type == "cuda" else None)
    setup.train()
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        # a run killed with SIGKILL mid-write leaves atomic_write's hidden temporary file: nothing reads
        # it (the rename never happened), so clear them rather than let a run folder collect them
        for stale in run_dir.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)
        atomic_write(run_dir / "options.json", lambda tmp: Path(tmp).write_text(opts.to_json()))
        sk = dict(train_set.skipped)
        log(f"data: {len(train_set)} training items, {len(val_set)} validation items" + (f"; skipped {sk}" if sk else ""))
        pretrain_loss = "bins cross-entropy" if opts.head == "bins" else opts.pretrain_loss.upper()
        log(f"preset {opts.preset}: {opts.arch} width {opts.width}, {opts.steps} steps ({opts.pretrain_steps} "
            f"{pretrain_loss} pretraining), batch {opts.batch_size}"
            f"{f' x {world} processes' if world > 1 else ''}, {opts.image_size}px, device {device}"
            + (", bf16 autocast" if opts.amp else ""))
    return _State(setup, train_set, val_set, step, best)


class _RunLog:
    """Rank 0's record of a run: the progress bar, TensorBoard, ``history.jsonl``, the loss-curve PNG and
    validation grids. Other ranks get an instance that does nothing (``active=False``)."""

    def __init__(self, opts: TrainOptions, *, step: int, resume: bool, world: int, active: bool) -> None:
        from tqdm import tqdm

        self.opts, self.world, self.active = opts, world, active
        self.run_dir = Path(opts.out)
        self.writer = None
        self.history: list[dict[str, Any]] = []
        if active:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=step if resume else None)
            self.history = _load_history(self.run_dir, step) if resume else []
            hist_text = "".join(json.dumps(r) + "\n" for r in self.history)
            atomic_write(self.run_dir / "history.jsonl", lambda tmp: Path(tmp).write_text(hist_text))
        self.pbar = tqdm(total=opts.steps, initial=step, disable=not active, file=sys.stderr, unit="step", dynamic_ncols=True)
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.t_log, self.steps_since_log = time.perf_counter(), 0

    def _append(self, rec: dict[str, Any]) -> None:
        self.history.append(rec)
        with open(self.run_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def losses(self, step: int, phase: str, losses: dict[str, float]) -> None:
        """After step ``step`` (steps completed): the bar, and every ``log_every`` steps the mean losses,
        learning rate and throughput to TensorBoard and ``history.jsonl``."""
        self.steps_since_log += 1
        for k, v in losses.items():
            self.sums[k] += v
            self.counts[k] += 1
        if not self.active:
            return
        o = self.opts
        self.pbar.update(1)
        self.pbar.set_postfix({"phase": phase[:3], **{k: f"{v:.3f}" for k, v in losses.items()}}, refresh=False)
        if step % o.log_every == 0 or step == o.steps:
            dt = time.perf_counter() - self.t_log
            rec = {"step": step, **{k: self.sums[k] / self.counts[k] for k in self.sums}}
            rec["lr_g"] = lr_at(step - 1, o.pretrain_lr if phase == "pretrain" else o.g_lr, o, phase)
            rec["images_per_s"] = self.steps_since_log * o.batch_size * self.world / max(dt, 1e-9)
            for k, v in rec.items():
                if k != "step":
                    self.writer.add_scalar(("loss/" if k[:2] in ("g_", "d_") else "train/") + k, v, step)
            self._append(rec)
            self.sums.clear(), self.counts.clear()
            self.t_log, self.steps_since_log = time.perf_counter(), 0

    def validation(self, step: int, metrics: dict[str, float], grid: torch.Tensor | None) -> None:
        if grid is not None:
            write_grid(self.run_dir, step, grid)
            self.writer.add_image("val/gray_predicted_truth", grid, step)
        if metrics:
            for k, v in metrics.items():
                self.writer.add_scalar(f"val/{k[4:]}", v, step)
            self._append({"step": step, **metrics})
            say(f"colorgan-train: step {step}: validation ab L1 {metrics['val_l1']:.4f}, PSNR {metrics['val_psnr']:.2f} dB")
        plot_losses(self.run_dir, self.history, self.opts.pretrain_steps)

    def close(self) -> None:
        self.pbar.close()
        if self.writer is not None:
            self.writer.close()


def _validate(state: _State, opts: TrainOptions, device: torch.device, runlog: _RunLog) -> None:
    """Validation figures and grid (rank 0); a new best validation L1 also writes ``generator-best``."""
    metrics, grid = validate_and_grid(state.setup, state.val_set, opts, device)
    runlog.validation(state.step, metrics, grid)
    best = state.best
    if metrics and (best["best_val_l1"] is None or metrics["val_l1"] < best["best_val_l1"]):
        best.update(best_val_l1=metrics["val_l1"], best_step=state.step)
        save_generator(Path(opts.out) / "generator-best.safetensors", state.setup.generator, checkpoint.model_config(opts))


def _run(opts: TrainOptions, *, resume: bool, rank: int, world: int, device: torch.device) -> TrainResult:
    main = rank == 0
    state = _prepare(opts, resume=resume, rank=rank, world=world, device=device)
    setup, run_dir = state.setup, Path(opts.out)
    if state.step >= opts.steps:
        if main:
            log(f"already at step {state.step} >= --steps {opts.steps}; nothing to do (give a larger --steps to extend)")
        return TrainResult(EXIT_OK, state.step, setup)

    sampler = StepSampler(state.train_set, rank=rank, world=world, seed=opts.seed, start=state.step * opts.batch_size)
    loader = DataLoader(state.train_set, batch_size=opts.batch_size, sampler=sampler, drop_last=True,
                        num_workers=opts.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=opts.num_workers > 0,
                        # Worker seeds from their own generator, not the global RNG: drawing them would
                        # shift the augmentation stream at a resume, and exact resumes are the contract.
                        generator=torch.Generator().manual_seed(opts.seed * 7 + 104729 * rank + state.step))
    runlog = _RunLog(opts, step=state.step, resume=resume, world=world, active=main)
    stop = {"signal": None}

    def on_signal(signum, frame):  # finish the current step, save, exit; a second signal aborts at once
        if stop["signal"] is not None:
            raise KeyboardInterrupt
        stop["signal"] = signum
        if main:
            log(f"got {signal.Signals(signum).name}: saving a checkpoint after this step (again to abort)")

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    last_saved = state.step if resume else -1

    def save(at_step: int) -> None:
        nonlocal last_saved
        setup.sync_buffers()  # every rank calls save() at the same step
        if main:
            checkpoint.save(run_dir, step=at_step, phase=setup.phase(at_step), opts=opts, nets=setup.nets,
                            optimizers=setup.optimizers, generator=setup.generator, extra=state.best)
        last_saved = at_step

    code = EXIT_OK
    try:
        for batch in loader:
            phase = setup.phase(state.step)
            setup.set_input(batch)
            losses = setup.optimize_parameters(state.step)
            _check_finite(losses, state.step, phase, stop, world, device)
            state.step += 1
            step = state.step
            runlog.losses(step, phase, losses)
            # a snapshot step is a checkpoint step too (snapshots are written with the checkpoint), whatever
            # --checkpoint-every is
            snapshot_due = bool(opts.snapshot_every) and step % opts.snapshot_every == 0
            at_checkpoint = (step % opts.checkpoint_every == 0 or step == opts.steps or step == opts.pretrain_steps
                             or snapshot_due)
            val_due = (step % opts.val_every == 0) if opts.val_every else at_checkpoint
            if main and (val_due or step == opts.steps):
                _validate(state, opts, device, runlog)
            if at_checkpoint:
                save(step)
                if main and step == opts.pretrain_steps:
                    save_generator(run_dir / "generator-pretrained.safetensors", setup.generator, checkpoint.model_config(opts))
            if stop["signal"] is not None:
                if last_saved != step:
                    save(step)
                if main:
                    say(f"colorgan-train: stopped at step {step}; checkpoint saved; resume with --resume {run_dir}")
                code = EXIT_INTERRUPTED
                break
            if step >= opts.steps:
                break
    except NonFiniteLoss as e:
        if main:
            say(f"colorgan-train: ERROR: {e}. Stopping; the last good checkpoint "
                f"(step {last_saved if last_saved >= 0 else 'none'}) is kept untouched. Try a lower learning rate, "
                f"--no-amp, or check the data.")
        code = EXIT_NONFINITE
    except KeyboardInterrupt:
        if main:
            say("colorgan-train: aborted by a second interrupt; no checkpoint written for the current step")
        code = EXIT_INTERRUPTED
    finally:
        runlog.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if main and code == EXIT_OK:
        best = state.best
        b = f"; best validation ab L1 {best['best_val_l1']:.4f} at step {best['best_step']}" if best["best_val_l1"] is not None else ""
        log(f"done: step {state.step}; generator at {run_dir / 'generator.safetensors'}{b}")
    return TrainResult(code, state.step, setup)


def _check_finite(losses: dict[str, float], step: int, phase: str, stop: dict[str, Any], world: int,
                  device: torch.device) -> None:
    """Raise :class:`NonFiniteLoss` when any rank's loss is NaN/inf; under DDP also spread a stop signal
    one rank received to all (every rank must save at the same step)."""
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if world > 1:
        import torch.distributed as dist

        flag = torch.tensor([float(bool(bad)), float(stop["signal"] is not None)], device=device)
        dist.all_reduce(flag)
        if flag[0] > 0 and not bad:
            bad = ["(on another rank)"]
        if flag[1] > 0 and stop["signal"] is None:
            stop["signal"] = signal.SIGTERM
    if bad:
        raise NonFiniteLoss(f"non-finite loss {', '.join(f'{k}={losses.get(k)}' for k in bad)} at step {step} ({phase} phase)")
