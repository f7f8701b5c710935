"""The training loop: one short, explicit function (after nanoGPT's ``train.py``).

Per step ``t = 0 … S−1``: draw this rank's rows of the global batch, forward under bf16 autocast
on CUDA (fp32 on CPU), cross-entropy loss, backward (DDP averages gradients across processes),
clip the global gradient norm to ``grad_clip``, ``optimizer.step()`` (a matbal preset; its matrix
chains split across ranks by :class:`~matbal.optim.distributed.DistributedChainOptimizer`), then
``scheduler.step()`` (``LambdaLR``: every group's lr is scaled by the schedule's multiplier).
After the step, ``step = t + 1`` is the number of completed updates: metrics, validation
(every ``eval_every`` steps, at step 0 and at the end), checkpoints (every ``ckpt_every`` and at
the end) and callbacks (``cb.on_step_end(step, model, optimizer, metrics)``) use it.

Reproducibility: ``seed`` fixes the model init (torch RNG), the batch order (a dedicated
generator) and dropout; on CPU two runs with the same config and thread count are bit-identical,
and resuming from a checkpoint continues the same trajectory bit-exactly (model, optimizer,
scheduler, data generator and RNG states are restored).

>>> from matbal.train import TrainConfig, train
>>> res = train(TrainConfig(model="mlp", optimizer="muon", steps=20, quiet=True,
...                         out_dir="runs", run_name="mlp"))  # doctest: +SKIP
>>> res.final_val_loss < 2.3                                           # doctest: +SKIP
True
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels.dtype_policy import dtype_policy_report
from ..optim import PRESETS
from ..optim.distributed import DistributedChainOptimizer, distribute
from .checkpoint import (FORMAT, checkpoint_path, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import OptionError, TrainConfig
from .distributed import (DistInfo, all_reduce_sum, barrier, broadcast_str, full_state_dict,
                          load_full_state_dict, setup, wrap_fsdp)
from .lrs import resolve_lr
from .models import count_params
from .rundir import (MetricsWriter, code_version, default_run_name, library_versions,
                     read_metrics, write_json)
from .schedule import make_scheduler
from .tasks import make_task

__all__ = ["train", "TrainResult", "build_optimizer"]


@dataclass
class TrainResult:
    """What :func:`train` returns (``summary.json`` holds the same numbers)."""

    run_dir: Path
    config: TrainConfig
    step: int
    completed: bool
    final_train_loss: float
    final_val_loss: float
    best_val_loss: float
    wall_time_s: float
    mean_step_time_s: float
    tokens_per_s: float
    matrices_per_rank: list[int]
    model: nn.Module = field(repr=False)
    optimizer: torch.optim.Optimizer = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self).items()
                if k not in ("model", "optimizer", "config")}


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> DistributedChainOptimizer:
    """The preset ``cfg.optimizer`` on ``model`` (lr resolved; see :mod:`matbal.train.lrs`),
    as a :class:`DistributedChainOptimizer` (a plain ChainOptimizer when not distributed), or
    with ``cfg.parallel == "fsdp"`` an :class:`~matbal.optim.fsdp.FSDPChainOptimizer` (build it
    after ``fully_shard``).

    A keyword the preset refuses raises :class:`~matbal.train.config.OptionError` naming the
    option it came from (``lr``, ``adamw_lr``, ``weight_decay`` or ``optimizer_kwargs``) and
    the keyword."""
    kw = cfg.optimizer_kwargs_dict()
    source = {k: "optimizer_kwargs" for k in kw}
    source["lr"] = "lr"
    if cfg.weight_decay is not None:
        kw["weight_decay"] = cfg.weight_decay
        source["weight_decay"] = "weight_decay"
    if cfg.adamw_lr is not None:
        if cfg.optimizer == "adamw":
            raise OptionError("adamw_lr", "adamw_lr sets the AdamW group of matrix presets; "
                              "with optimizer='adamw' use lr")
        kw["adamw_lr"] = cfg.adamw_lr
        source["adamw_lr"] = "adamw_lr"
    preset = PRESETS[cfg.optimizer]
    kw["lr"] = cfg.lr
    try:
        opt = preset(model, **kw)
    except (TypeError, ValueError) as e:
        # blame the first keyword that the preset refuses on its own (others at their defaults)
        for key in ["lr", *(k for k in kw if k != "lr")]:
            try:
                preset(model, **{key: kw[key]})
            except (TypeError, ValueError) as alone:
                unknown = isinstance(alone, TypeError) and "unexpected keyword" in str(alone)
                raise OptionError(source[key], (
                    f"optimizer {cfg.optimizer!r} has no keyword {key!r}" if unknown else
                    f"{key}={kw[key]!r} is refused by optimizer {cfg.optimizer!r}: {alone}")
                ) from None
        raise OptionError("optimizer_kwargs" if cfg.optimizer_kwargs_dict() else "optimizer",
                          f"optimizer {cfg.optimizer!r} refuses {kw}: {e}") from None
    if cfg.parallel == "fsdp":
        from ..optim.fsdp import shard
        return shard(opt)
    return distribute(opt)


def _resolve(cfg: TrainConfig) -> TrainConfig:
    lr, adamw_lr, _ = resolve_lr(cfg.model, cfg.optimizer, cfg.lr, cfg.adamw_lr)
    if cfg.optimizer == "adamw":
        adamw_lr = None
    wd = cfg.weight_decay
    if wd is None:
        from .lrs import preset_default
        wd = preset_default(cfg.optimizer, "weight_decay")
    return cfg.replace(lr=lr, adamw_lr=adamw_lr, weight_decay=None if wd is None else float(wd),
                       warmup_steps=cfg.warmup())


def _run_dir(cfg: TrainConfig, info: DistInfo, device: torch.device) -> Path:
    name = broadcast_str(cfg.run_name or default_run_name(cfg), info, device)
    path = Path(cfg.out_dir) / name
    if info.is_main:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OptionError("out_dir", f"cannot create the run directory {path}: "
                              f"{e.strerror or e}") from None
        if not os.access(path, os.W_OK):
            raise OptionError("out_dir", f"the run directory {path} is not writable")
    barrier(info)
    return path


@torch.no_grad()
def _evaluate(model, batches, device, autocast, info: DistInfo, *,
              sharded: bool = False) -> float:
    """Mean validation loss; batch ``i`` runs on rank ``i mod W``. ``sharded`` (FSDP2: a forward
    is a collective) gives every rank the same number of forwards, padding with a batch that is
    not counted."""
    model.eval()
    tot = torch.zeros(2, dtype=torch.float64, device=device)
    batches = list(batches)
    n = len(batches)
    rounds = -(-n // info.world_size) * info.world_size if sharded else n
    for i in range(rounds):
        if i % info.world_size != info.rank:
            continue
        x, y = batches[i if i < n else 0]
        x, y = x.to(device), y.to(device)
        with autocast():
            logits = model(x)
        if i >= n:
            continue
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                               reduction="sum")
        tot[0] += loss.double()
        tot[1] += y.numel()
    all_reduce_sum(tot, info)
    model.train()
    return float(tot[0] / tot[1])


def _progress(cfg, info, start):
    enabled = info.is_main and not cfg.quiet and sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=cfg.steps, initial=start, dynamic_ncols=True, desc=cfg.optimizer)


def train(cfg: TrainConfig, *, callbacks: Iterable[Any] = (), stop_at: int | None = None
          ) -> TrainResult:
    """Train ``cfg.model`` with ``cfg.optimizer`` for ``cfg.steps`` steps; return a :class:`TrainResult`.

    Parameters
    ----------
    cfg : the run's :class:`TrainConfig`.
    callbacks : objects with ``on_step_end(step, model, optimizer, metrics)`` (called on every
        rank after every step; ``model`` is the unwrapped module, ``metrics`` a dict with ``step``,
        ``train_loss`` (this rank's), ``lr``, ``step_time_s`` and ``val_loss`` when evaluated) and
        optionally ``on_train_end(result)``.
    stop_at : stop after this many completed steps (checkpointing there) although the schedule
        runs to ``cfg.steps`` — an interruption on purpose; resume with ``resume="auto"``.
    """
    cfg = cfg.validate()
    info, device = setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg = _resolve(cfg)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 \
        else contextlib.nullcontext
    run_dir = _run_dir(cfg, info, device)

    torch.manual_seed(cfg.seed)
    task = make_task(cfg, rank=info.rank, world_size=info.world_size)
    model = task.model.to(device)
    fsdp = cfg.parallel == "fsdp" and info.distributed
    if fsdp:
        wrap_fsdp(model)
    optimizer = build_optimizer(cfg, model)
    scheduler = make_scheduler(optimizer, cfg)

    start, best_val = 0, math.inf
    ckpt = _find_resume(cfg, run_dir, info)
    if ckpt is not None:
        start, best_val = _restore(ckpt, cfg, info, device, model, optimizer, scheduler, task)
        if start >= cfg.steps:
            return _finished(cfg, run_dir, info, device, start, best_val, model, optimizer)

    writer = MetricsWriter(run_dir, tensorboard=cfg.tensorboard, enabled=info.is_main)
    if info.is_main:
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "env.json", {
            "code": code_version(), "libraries": library_versions(), "device": str(device),
            "world_size": info.world_size, "precision": "bf16-autocast" if use_bf16 else "fp32",
            "n_params": count_params(model), "task": task.info,
            "ns_dtype_policy": dtype_policy_report(device)})
        # rows after the checkpoint's step are replayed; without a checkpoint (a run killed
        # before its first one) everything is, step 0 included
        writer.truncate_after(start if ckpt is not None else -1)
    ddp = model
    if info.distributed and not fsdp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    callbacks = list(callbacks) + _instrument_callbacks(cfg, run_dir, info, start)
    bar = _progress(cfg, info, start)
    val_loss = last_loss = math.nan
    train_time, steps_run = 0.0, 0
    window_t, window_steps = 0.0, 0
    t_begin = time.perf_counter()
    if start == 0:
        val_loss = _evaluate(model, task.val_batches, device, autocast, info, sharded=fsdp)
        best_val = min(best_val, val_loss)
        writer.write({"step": 0, "train_loss": None, "val_loss": val_loss,
                      "lr": optimizer.param_groups[0]["lr"], "tokens_per_s": None,
                      "step_time_s": None})

    for cb in callbacks:
        if hasattr(cb, "on_train_begin"):
            cb.on_train_begin(model, optimizer)
    for t in range(start, end):
        t0 = time.perf_counter()
        x, y = task.batcher.next()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast():
            logits = ddp(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        last_loss = loss.item()  # synchronizes, so the step time below is honest on CUDA too
        if not math.isfinite(last_loss):
            raise FloatingPointError(f"training loss became {last_loss} at step {t + 1}")
        dt = time.perf_counter() - t0
        train_time += dt
        window_t += dt
        steps_run += 1
        window_steps += 1
        step = t + 1
        metrics: dict[str, Any] = {"step": step, "train_loss": last_loss, "lr": lr,
                                   "step_time_s": dt}
        evaluate = step % cfg.eval_every == 0 or step == cfg.steps
        if evaluate:
            val_loss = _evaluate(model, task.val_batches, device, autocast, info, sharded=fsdp)
            best_val = min(best_val, val_loss)
            metrics["val_loss"] = val_loss
        if step % cfg.log_every == 0 or evaluate or step == end:
            mean_loss = _mean_over_ranks(last_loss, device, info)
            rate = task.tokens_per_batch * window_steps / window_t
            writer.write({"step": step, "train_loss": mean_loss,
                          "val_loss": val_loss if evaluate else None, "lr": lr,
                          "tokens_per_s": rate, "step_time_s": window_t / window_steps})
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.3f}", val=f"{val_loss:.3f}",
                                tok_s=f"{rate:,.0f}", refresh=False)
            window_t, window_steps = 0.0, 0
        for cb in callbacks:
            cb.on_step_end(step, model, optimizer, metrics)
        if bar is not None:
            bar.update(1)
        if (cfg.ckpt_every and step % cfg.ckpt_every == 0) or step == end:
            _save(cfg, run_dir, info, device, step, best_val, model, optimizer, scheduler, task)
    if bar is not None:
        bar.close()
    writer.close()

    step = max(end, start)
    counts = optimizer.gather_counts()
    mean_dt = train_time / steps_run if steps_run else math.nan
    result = TrainResult(
        run_dir=run_dir, config=cfg, step=step, completed=step >= cfg.steps,
        final_train_loss=_mean_over_ranks(last_loss, device, info), final_val_loss=val_loss,
        best_val_loss=best_val, wall_time_s=time.perf_counter() - t_begin,
        mean_step_time_s=mean_dt, tokens_per_s=task.tokens_per_batch / mean_dt if steps_run
        else math.nan, matrices_per_rank=counts, model=model, optimizer=optimizer)
    if info.is_main:
        _write_summary(result, info, device)
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(result)
    return result


def _write_summary(result: TrainResult, info: DistInfo, device) -> None:
    cfg = result.config
    write_json(result.run_dir / "summary.json", {
        **result.summary(), "optimizer": cfg.optimizer, "model": cfg.model, "lr": cfg.lr,
        "world_size": info.world_size, "device": str(device),
        "matrices_per_step": sum(len(g["params"]) for g in result.optimizer.param_groups
                                 if g["matrix"])})


def _finished(cfg, run_dir, info, device, step, best_val, model, optimizer) -> TrainResult:
    """Resuming a run whose checkpoint is at its last step: nothing to train. The result is the
    run's ``summary.json`` (left as it is); when the run stopped before writing it, it is
    completed from ``metrics.jsonl``'s last row (written before the final checkpoint)."""
    path = run_dir / "summary.json"
    if info.is_main:
        print(f"matbal train: {run_dir} already finished ({step}/{cfg.steps} steps); nothing to "
              f"do{' (summary.json kept)' if path.exists() else ''}", file=sys.stderr)
    names = [f.name for f in fields(TrainResult)
             if f.name not in ("run_dir", "config", "model", "optimizer")]
    if path.exists():
        saved = json.loads(path.read_text())
        return TrainResult(run_dir=run_dir, config=cfg, model=model, optimizer=optimizer,
                           **{k: saved[k] for k in names})
    rows = [r for r in read_metrics(run_dir) if r["step"] == step]
    last = rows[-1] if rows else {}
    result = TrainResult(
        run_dir=run_dir, config=cfg, step=step, completed=True,
        final_train_loss=_float(last.get("train_loss")),
        final_val_loss=_float(last.get("val_loss")),
        best_val_loss=best_val, wall_time_s=0.0, mean_step_time_s=math.nan,
        tokens_per_s=math.nan, matrices_per_rank=optimizer.gather_counts(), model=model,
        optimizer=optimizer)
    if info.is_main:
        _write_summary(result, info, device)
    return result


def _float(v) -> float:
    return math.nan if v is None else float(v)


def _instrument_callbacks(cfg: TrainConfig, run_dir, info: DistInfo, start: int) -> list:
    """Probes / recorder asked for by ``--probe-every`` / ``--record-every`` (one sink and one
    store per rank: each rank observes only the matrices it owns).

    Nothing stale survives: probe rows after ``start`` (the step resumed from; 0 for a fresh run)
    are dropped, as ``metrics.jsonl`` drops its rows; a fresh run into a directory whose store
    already holds records is refused rather than mixing two trajectories (on resume, re-recorded
    steps are skipped: the resumed trajectory is bit-identical)."""
    from ..instruments.probes import JSONLSink, Probes, Recorder, read_rows
    from ..instruments.store import MatrixStore, StoreNotFoundError

    suffix = "" if info.rank == 0 else f".rank{info.rank}"
    out = []
    if cfg.probe_every:
        path = run_dir / f"probes{suffix}.jsonl"
        if path.exists():
            keep = [r for r in read_rows(path) if r["step"] <= start]
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
            os.replace(tmp, path)
        exact = cfg.probe_exact_every or 10 * cfg.probe_every
        out.append(Probes(JSONLSink(path), every=cfg.probe_every, exact_every=exact,
                          run=run_dir.name))
    if cfg.record_every:
        store_path = run_dir / f"store{suffix}"
        if start == 0:
            try:
                with MatrixStore(store_path, mode="r") as existing:
                    n_old = len(existing)
            except StoreNotFoundError:
                n_old = 0
            if n_old:
                raise FileExistsError(
                    f"{store_path} already holds {n_old} recorded matrices from an earlier run; "
                    "use a new --run-name, or --resume auto to continue that run")
        kinds = tuple(k.strip() for k in cfg.record_kinds.split(","))
        out.append(Recorder(store_path, run=run_dir.name, kinds=kinds, every=cfg.record_every,
                            if_exists="skip",
                            storage_dtype=torch.bfloat16 if cfg.record_bf16 else None))
    return out


def _mean_over_ranks(x: float, device, info: DistInfo) -> float:
    if not info.distributed:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)
    return float(all_reduce_sum(t, info)[0] / info.world_size)


# --- checkpoints -------------------------------------------------------------------------------
def _save(cfg, run_dir, info, device, step, best_val, model, optimizer, scheduler, task):
    fsdp = cfg.parallel == "fsdp" and info.distributed
    state = full_state_dict(model) if fsdp else model.state_dict()  # FSDP2: gather on all ranks
    obj = {"format": FORMAT, "step": step, "world_size": info.world_size, "rank": info.rank,
           "config": cfg.to_dict(), "model": state if info.is_main else None,
           "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
           "data": task.batcher.state_dict(), "rng": rng_state(device),
           "best_val_loss": best_val if math.isfinite(best_val) else None,
           "matrices_computed": optimizer.matrices_computed}
    barrier(info)
    save_checkpoint(obj, checkpoint_path(run_dir, info.rank))
    barrier(info)


def _find_resume(cfg, run_dir: Path, info: DistInfo):
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        path = checkpoint_path(run_dir, 0)
        if not path.exists():
            return None
    else:
        path = Path(cfg.resume)
        if path.is_dir():
            path = checkpoint_path(path, 0)
        if not path.is_file():
            raise OptionError("resume", f"no checkpoint at {path} (give a checkpoint file, a run "
                              "directory holding checkpoint.pt, or 'auto')")
    try:
        main = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file: say which and why
        raise OptionError("resume", f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(main, dict) or main.get("format") != FORMAT:
        got = main.get("format") if isinstance(main, dict) else type(main).__name__
        raise OptionError("resume", f"checkpoint {path} has format {got}, expected {FORMAT}")
    if main["world_size"] != info.world_size:
        raise OptionError("resume", f"checkpoint {path} was written by {main['world_size']} "
                          f"processes; resume it with the same number (this run has "
                          f"{info.world_size})")
    if info.rank == 0:
        return main
    own = load_checkpoint(checkpoint_path(path.parent, info.rank))
    if own["step"] != main["step"]:
        raise ValueError(f"checkpoint shards disagree: rank 0 at step {main['step']}, rank "
                         f"{info.rank} at step {own['step']}")
    own["model"] = main["model"]
    return own


def _restore(ckpt, cfg, info, device, model, optimizer, scheduler, task):
    saved = TrainConfig.from_dict(ckpt["config"])
    diff = cfg.trajectory_diff(saved)
    if diff:
        raise OptionError("resume", "cannot resume: the config differs from the checkpoint's in "
                          + ", ".join(f"{k} (checkpoint {b!r}, now {a!r})"
                                      for k, (a, b) in diff.items()))
    if cfg.parallel == "fsdp" and info.distributed:
        load_full_state_dict(model, ckpt["model"])
    else:
        model.load_state_dict(ckpt["model"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a different chain would be a different trajectory
            optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, UserWarning) as e:
        raise OptionError("resume", f"the checkpoint's optimizer state does not fit this "
                          f"run: {e}") from None
    scheduler.load_state_dict(ckpt["scheduler"])
    task.batcher.load_state_dict(ckpt["data"])
    set_rng_state(ckpt["rng"], device)
    optimizer.matrices_computed = int(ckpt.get("matrices_computed", 0))
    best = ckpt.get("best_val_loss")
    return int(ckpt["step"]), (math.inf if best is None else float(best))
