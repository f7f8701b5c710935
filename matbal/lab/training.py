"""What the training experiments share: runs of (arm × seed) cached by configuration, extra
evaluations, weight movement, recorded runs, and replaying a recorded gradient stream through
optimizer chains.

- :class:`Arm` and :func:`run_arm` — one training run of a labelled optimizer setting; the run
  directory keeps ``request.json`` (the requested config + git SHA) and a later call with the same
  request reuses the finished run instead of training again (``reuse=False`` forces a rerun);
- :data:`LAB_PRESETS` — control arms that are a preset with one transform swapped (the exact-SVD
  polar factor in place of Newton–Schulz: ``polar-m``, ``polar-rm``), registered into
  :data:`matbal.optim.PRESETS` by :func:`register_lab_presets` so that :func:`run_arm` (and the
  CLI's config checks) can build them by name;
- :func:`curve`, :func:`mean_std`, :func:`separation` — seed statistics for tables (verdicts use
  :mod:`matbal.lab.arm_stats`; ``separation`` is the earlier single-difference rule);
- :class:`LossOn`, :func:`eval_loss`, :func:`val_batches` — validation loss on other tasks during
  training (e.g. retention of the pretraining task while fine-tuning);
- :func:`weight_change` — how far each matrix moved (relative Frobenius / spectral change);
- :func:`record_run` — train with a :class:`~matbal.instruments.probes.Recorder` (and optional
  :class:`~matbal.instruments.probes.Probes`) attached *before* step 1 (:class:`AttachAtStart`,
  the loop's ``on_train_begin``), matrices to a :class:`~matbal.instruments.MatrixStore`;
- :func:`direction_chain`, :func:`replay` — feed a recorded gradient stream through the matrix
  chains of several presets (without weight decay) to get each optimizer's direction from the
  same gradients (REG-2), :func:`cosine`;
- :data:`RECORDING` / :func:`recorded_gpt` — the one recorded GPT run per optimizer that REG-2
  and RM-1 both analyse (cached: the second experiment reads the first one's store);
- :data:`WIDTH_RECORDING` / :func:`recorded_gpt_at_width` — short Muon runs of the same GPT at
  several widths with momenta recorded (SC-1 and RM-1's width series share them, cached alike);
- :func:`layer_type` — ``"transformer.h.0.attn.c_attn.weight"`` → ``"attn.c_attn"``;
  :data:`OPTIMIZER_COLORS` / :data:`OPTIMIZER_LABELS` for the training figures.

Workaround documented here (it belongs in the optimizer layer): the ``adamw`` preset keeps no
parameter names, so :class:`AttachAtStart` names its group from the model's ``named_parameters()``.

Layer-6 helper (see :mod:`matbal.lab`): experiments call these; nothing in matbal imports them.

>>> layer_type("transformer.h.1.mlp.c_proj.weight")
'mlp.c_proj'
>>> mean_std([1.0, 2.0, 3.0])
(2.0, 1.0)
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from .results import REPO_ROOT

__all__ = ["Arm", "LAB_PRESETS", "register_lab_presets", "runs_root", "run_arm", "curve", "mean_std", "separation", "eval_loss",
           "val_batches", "LossOn", "weight_change", "AttachAtStart", "record_run",
           "direction_chain", "replay", "cosine", "layer_type", "LAYER_TYPES", "RECORDING",
           "RECORDING_QUICK", "recorded_gpt", "WIDTH_RECORDING", "WIDTH_RECORDING_QUICK",
           "recorded_gpt_at_width", "read_jsonl", "OPTIMIZER_COLORS",
           "OPTIMIZER_LABELS", "interleaved_step_times", "char_gpt_base", "run_parallel"]

#: Hidden-matrix types of :class:`matbal.train.models.GPT`, in block order.
LAYER_TYPES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_LAYER_RE = re.compile(r"(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)")


def layer_type(name: str) -> str:
    """The hidden-matrix type in a GPT parameter name (the name itself if none matches)."""
    m = _LAYER_RE.search(name)
    return m.group(1) if m else name


def runs_root(name: str, results_dir=None) -> Path:
    """Where an experiment keeps its run directories: ``out/runs/<name>`` of the checkout for the
    committed results (``results_dir=None``), else ``<results_dir>/_runs/<name>`` (quick runs,
    tests) — never inside ``experiments/results``."""
    if results_dir is None:
        return REPO_ROOT / "out" / "runs" / name
    return Path(results_dir) / "_runs" / name


# --- control presets -----------------------------------------------------------------------------
def _exact_polar(base: str, **defaults):
    """Preset ``base`` with every :class:`~matbal.optim.transforms.Orthogonalize` of its matrix
    chain replaced by the exact polar factor (SVD, ``Orthogonalize(exact=True)``)."""
    def make(params, **kw):
        from ..optim import PRESETS, Chain
        from ..optim.transforms.orthogonalize import Orthogonalize

        opt = PRESETS[base](params, **{**defaults, **kw})
        for g in opt.param_groups:
            ts = g["chain"].transforms
            if any(isinstance(t, Orthogonalize) for t in ts):
                g["chain"] = Chain(*(Orthogonalize(exact=True) if isinstance(t, Orthogonalize)
                                     else t for t in ts))
        return opt

    make.__doc__ = (f"``{base}`` with the exact polar factor (SVD) instead of Newton–Schulz"
                    + (f", defaults {defaults}" if defaults else "") + ".")
    return make


#: Control arms: name → preset constructor. ``polar-m`` = Muon's momentum, the exact polar factor
#: of ``M`` and MuonEq's update scale ``0.2·√max(m,n)``; ``polar-rm`` = MuonEq-R with the exact
#: polar factor of ``R(M)``. Against scale-matched Muon / MuonEq-R they isolate Newton–Schulz's
#: inaccuracy; against each other the change of direction by the row balancing.
LAB_PRESETS: dict[str, Callable] = {
    "polar-m": _exact_polar("muon", shape_rule="match_rms_adamw"),
    "polar-rm": _exact_polar("muoneq-r"),
}


def register_lab_presets() -> None:
    """Add :data:`LAB_PRESETS` to :data:`matbal.optim.PRESETS` (idempotent; existing names are
    never replaced).

    >>> register_lab_presets()
    >>> from matbal.optim import PRESETS
    >>> "polar-rm" in PRESETS
    True
    """
    from ..optim import PRESETS

    for name, make in LAB_PRESETS.items():
        PRESETS.setdefault(name, make)


# --- runs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """A labelled optimizer setting: preset name, lr (``None``: ``best_lrs.json``), the AdamW
    group's lr, extra preset keywords, and any other config fields (``overrides``)."""

    label: str
    optimizer: str
    lr: float | None = None
    adamw_lr: float | None = None
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def config(self, base, *, seed: int, out_dir: Path):
        """``base`` with this arm's settings, the seed and the run directory ``<label>-s<seed>``."""
        return base.replace(optimizer=self.optimizer, lr=self.lr,
                            adamw_lr=None if self.optimizer == "adamw" else self.adamw_lr,
                            optimizer_kwargs=json.dumps(dict(self.optimizer_kwargs), sort_keys=True),
                            seed=seed, out_dir=str(out_dir), run_name=f"{self.label}-s{seed}",
                            resume="", quiet=True, tensorboard="off", **dict(self.overrides))


def _git_sha() -> str:
    from ..train.rundir import code_version

    return str(code_version(REPO_ROOT).get("git_sha", "unknown"))


def run_arm(base, arm: Arm, seed: int, *, out_dir: Path,
            callbacks: Callable[[Path], Sequence[Any]] | None = None,
            reuse: bool = True) -> dict[str, Any]:
    """Train ``arm`` with ``seed`` (``base``: a :class:`~matbal.train.TrainConfig`); return the
    run's ``summary.json`` fields plus ``label``, ``seed``, ``run_dir``, ``reused``, ``lr`` (the
    resolved lr), ``adamw_lr`` and ``metrics`` (``metrics.jsonl`` records).

    ``callbacks(run_dir)`` makes the training callbacks (they should write what they measure into
    ``run_dir`` so that a reused run still has it). With ``reuse=True`` a finished run whose
    ``request.json`` equals this request (config + git SHA) is read back instead of retrained."""
    from ..train import train
    from ..train.rundir import read_metrics

    register_lab_presets()
    cfg = arm.config(base, seed=seed, out_dir=Path(out_dir))
    run_dir = Path(out_dir) / cfg.run_name
    request = {"config": cfg.to_dict(), "git_sha": _git_sha(), "type": type(cfg).__name__}
    req_path, sum_path = run_dir / "request.json", run_dir / "summary.json"
    reused = False
    if reuse and req_path.exists() and sum_path.exists() and \
            json.loads(req_path.read_text()) == json.loads(json.dumps(request)):
        reused = True
    else:
        if req_path.exists():
            req_path.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob("*.jsonl"):
            stale.unlink()
        train(cfg, callbacks=list(callbacks(run_dir)) if callbacks else ())
        req_path.write_text(json.dumps(request, indent=1))
    summary = json.loads(sum_path.read_text())
    resolved = json.loads((run_dir / "config.json").read_text())
    return {**summary, "label": arm.label, "seed": seed, "run_dir": str(run_dir),
            "reused": reused, "lr": resolved["lr"], "adamw_lr": resolved.get("adamw_lr"),
            "metrics": read_metrics(run_dir)}


def char_gpt_base(cfg: Mapping[str, Any], **model_overrides):
    """The :class:`~matbal.train.TrainConfig` of the training claims' character GPT from an
    experiment config: ``cfg["model"]`` (n_layer, n_head, n_embd, block_size, batch_size) updated
    by ``model_overrides`` (e.g. ``n_embd=128``), and ``steps``, ``warmup_steps``, ``eval_every``
    (also the log interval), ``eval_batches``, ``threads``; always on the CPU.

    >>> char_gpt_base({"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16,
    ...                "batch_size": 8}, "steps": 8, "warmup_steps": 2, "eval_every": 4,
    ...                "eval_batches": 2, "threads": 1}, n_embd=32).n_embd
    32
    """
    from ..train import TrainConfig

    return TrainConfig(model="gpt", steps=cfg["steps"], warmup_steps=cfg["warmup_steps"],
                       eval_every=cfg["eval_every"], eval_batches=cfg["eval_batches"],
                       device="cpu", log_every=cfg["eval_every"], threads=cfg["threads"],
                       **{**cfg["model"], **model_overrides})


def run_parallel(fn: Callable[..., Any], tasks: Sequence[tuple], jobs: int = 1, *,
                 desc: str | None = None) -> list[Any]:
    """``[fn(*t) for t in tasks]`` on ``jobs`` forked worker processes (in task order; ``jobs ≤ 1``
    runs them here, one after the other).

    Meant for *prefilling* run caches: each task trains runs through :func:`run_arm`, which stores
    them on disk keyed by request, so the experiment afterwards walks its protocol sequentially
    and finds every run finished (``reused``) — the protocol's decisions are made in one place and
    do not depend on ``jobs``. Workers are forked (``fn`` may be defined in a script run as
    ``__main__``) and each is limited to one torch thread. ``desc``: a progress bar over finished
    tasks.

    >>> run_parallel(pow, [(2, 3), (3, 2)], jobs=1)
    [8, 9]
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=desc, disable=desc is None)
    if jobs == 1 or len(tasks) <= 1:
        out = []
        for t in tasks:
            out.append(fn(*t))
            bar.update(1)
        bar.close()
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _FORKED
    _FORKED = (fn, list(tasks))  # inherited by the forked workers: nothing is pickled but indices
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                                 mp_context=mp.get_context("fork"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            futures = [pool.submit(_run_forked, i) for i in range(len(tasks))]
            for f in as_completed(futures):
                f.result()  # a failed task raises here, at once
                bar.update(1)
            return [f.result() for f in futures]
    finally:
        _FORKED = None
        bar.close()


_FORKED: tuple[Callable[..., Any], list[tuple]] | None = None


def _run_forked(i: int):
    fn, tasks = _FORKED
    return fn(*tasks[i])


def curve(runs: Sequence[Mapping], key: str = "val_loss", *, records: str = "metrics"
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values (n_runs, n_steps))`` of ``key`` on the steps every run logged."""
    series = [{m["step"]: m[key] for m in r[records] if m.get(key) is not None} for r in runs]
    steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
    return np.array(steps), np.array([[s[t] for t in steps] for s in series], dtype=float)


def mean_std(xs: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    a = np.asarray(list(xs), dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def separation(a: Iterable[float], b: Iterable[float], *, k: float = 2.0) -> dict[str, float]:
    """Is mean(a) below mean(b) by more than ``k`` standard deviations of a difference of two
    single runs, ``σ = √(s_a² + s_b²)``? Returns ``diff = mean(b) − mean(a)``, ``sigma``,
    ``z = diff/σ`` and ``lower`` (``diff > k·σ``)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    sigma = math.hypot(sa, sb)
    diff = mb - ma
    z = diff / sigma if sigma > 0 else math.copysign(math.inf, diff) if diff else 0.0
    return {"diff": diff, "sigma": sigma, "z": z, "lower": bool(diff > k * sigma)}


# --- evaluation on other tasks -----------------------------------------------------------------
def val_batches(cfg) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed validation batches of ``cfg``'s task (``matbal.train.tasks.make_task``)."""
    from ..train.tasks import make_task

    with torch.random.fork_rng():  # make_task initializes a model from the global RNG
        return make_task(cfg).val_batches


@torch.no_grad()
def eval_loss(model: torch.nn.Module, batches) -> float:
    """Mean cross-entropy per token of ``model`` over ``batches`` (fp32, eval mode)."""
    was = model.training
    model.eval()
    tot = n = 0.0
    device = next(model.parameters()).device
    for x, y in batches:
        logits = model(x.to(device)).float()
        tot += float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1), reduction="sum"))
        n += y.numel()
    model.train(was)
    return tot / n


class LossOn:
    """Training callback: validation loss on other tasks' batches every ``every`` steps and at the
    last step, appended to ``path`` (JSON lines ``{"step": t, "<task>": loss, ...}``)."""

    def __init__(self, batches: Mapping[str, Sequence], *, every: int, last: int, path: Path):
        self.batches, self.every, self.last, self.path = dict(batches), every, last, Path(path)

    def on_step_end(self, step, model, optimizer, metrics) -> None:
        if step % self.every and step != self.last:
            return
        rec = {"step": step, **{k: eval_loss(model, b) for k, b in self.batches.items()}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]


def weight_change(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor],
                  names: Iterable[str]) -> list[dict[str, Any]]:
    """Per matrix: ``rel_frobenius = ‖W−W₀‖_F/‖W₀‖_F``, ``rel_spectral = ‖W−W₀‖₂/‖W₀‖₂``,
    ``sigma1_change = σ₁(W)/σ₁(W₀) − 1``, the stable rank of ``W−W₀`` and the cosine between
    the top left singular vectors of ``W`` and ``W₀`` (|u₁ᵀu₁'|; 1 = top direction kept)."""
    from .. import stable_rank

    rows = []
    for name in names:
        w0, w1 = before[name].double(), after[name].double()
        d = w1 - w0
        s0 = torch.linalg.matrix_norm(w0, ord=2)
        u0 = torch.linalg.svd(w0)[0][:, 0]
        u1 = torch.linalg.svd(w1)[0][:, 0]
        rows.append({"layer": name, "layer_type": layer_type(name),
                     "rel_frobenius": float(torch.linalg.norm(d) / torch.linalg.norm(w0)),
                     "rel_spectral": float(torch.linalg.matrix_norm(d, ord=2) / s0),
                     "sigma1_change": float(torch.linalg.matrix_norm(w1, ord=2) / s0 - 1),
                     "delta_stable_rank": float(stable_rank(d)),
                     "top_direction_overlap": float((u0 @ u1).abs())})
    return rows


# --- recorded runs -------------------------------------------------------------------------------
class AttachAtStart:
    """Training callback that attaches ``instruments`` (Probes, Recorder) in ``on_train_begin``
    — before step 1 — and closes them in ``on_train_end``.

    A param group that carries only default names (``param<i>``: the ``adamw`` preset keeps none)
    is first given the model's parameter names (matched by identity), so layer globs and recorded
    layer names work for an all-AdamW baseline too."""

    def __init__(self, *instruments):
        self.instruments = instruments

    def on_train_begin(self, model, optimizer) -> None:
        names = {id(p): n for n, p in model.named_parameters()}
        for g in optimizer.param_groups:
            if g["names"] == [f"param{i}" for i in range(len(g["params"]))] and \
                    all(id(q) in names for q in g["params"]):
                g["names"] = [names[id(q)] for q in g["params"]]
        for inst in self.instruments:
            inst.attach(optimizer)

    def on_step_end(self, step, model, optimizer, metrics) -> None:
        pass

    def on_train_end(self, result=None) -> None:
        self.close()

    def close(self) -> None:
        for inst in self.instruments:
            inst.close()


def record_run(base, arm: Arm, seed: int, *, out_dir: Path, record: Mapping[str, int],
               layers: str | Sequence[str] = "transformer.h.*", probes: Mapping | None = None,
               reuse: bool = True) -> dict[str, Any]:
    """:func:`run_arm` with matrices recorded into ``<run_dir>/store`` (a MatrixStore, run name =
    the arm's label): ``record`` maps a kind (``"grad"``, ``"momentum"``, ...) to its cadence in
    steps (1 = every step; step 1 always). ``probes``: keyword arguments of a
    :class:`~matbal.instruments.probes.Probes` whose rows go to ``<run_dir>/probes.jsonl``.
    Instruments attach before step 1 (:class:`AttachAtStart`). Returns the run record plus
    ``store`` (its path)."""
    from ..instruments.probes import JSONLSink, Probes, Recorder
    from ..instruments.store import MatrixStore

    opened: list = []

    def make(run_dir: Path):
        store_path = run_dir / "store"
        if store_path.exists():  # a stale, incomplete recording: start afresh
            import shutil

            shutil.rmtree(store_path)
        store = MatrixStore(store_path, fsync=False)
        insts = [Recorder(store, run=arm.label, kinds=(kind,), every=every, layers=layers,
                          all_groups=True) for kind, every in record.items()]
        if probes:
            insts.append(Probes(JSONLSink(run_dir / "probes.jsonl"), layers=layers, run=arm.label,
                                **dict(probes)))
        cb = AttachAtStart(*insts)
        opened.extend([cb, store])
        return [cb]

    try:
        rec = run_arm(base, arm, seed, out_dir=out_dir, callbacks=make, reuse=reuse)
    finally:
        if opened:  # idempotent: also when training raised before on_train_end
            opened[0].close()
            opened[1].close()
    rec["store"] = str(Path(rec["run_dir"]) / "store")
    return rec


# --- replaying a gradient stream through optimizer chains ----------------------------------------
def direction_chain(preset: str | Any, **kwargs):
    """The matrix chain of a preset (``matbal.optim.PRESETS`` name) without its trailing weight
    decay — the direction ``u`` of ``p ← p − lr·(u + λp)`` — or a given :class:`Chain` as is."""
    from ..optim import PRESETS, Chain
    from ..optim.transforms import AddDecayedWeights

    if isinstance(preset, Chain):
        return preset
    opt = PRESETS[preset]([torch.zeros(2, 2, requires_grad=True)], **kwargs)
    ts = list(opt.param_groups[0]["chain"])
    while len(ts) > 1 and isinstance(ts[-1], AddDecayedWeights):
        ts.pop()
    return Chain(*ts)


def replay(store_path: str | os.PathLike, run: str, chains: Mapping[str, Any], *,
           kind: str = "grad", layers: str = "*", every: int = 1
           ) -> Iterator[tuple[int, dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]]:
    """Feed the recorded ``kind`` stream of ``run`` (every step, in order) through each chain of
    ``chains`` (label → :class:`Chain` or preset name), one state per layer and chain, as the
    optimizer would. Yields ``(step, {layer: input}, {label: {layer: direction}})`` at step 1 and
    every ``every`` steps (all steps are still fed). Raises if the stream has gaps."""
    from ..instruments.store import MatrixStore
    from ..optim.transforms.base import StepContext

    chains = {k: direction_chain(v) for k, v in chains.items()}
    with MatrixStore(store_path, mode="r") as store:
        recs = store.query(run=run, kind=kind, layer=layers)
        by_step: dict[int, list] = {}
        for r in recs:
            by_step.setdefault(r.step, []).append(r)
        steps = sorted(by_step)
        if steps and steps != list(range(steps[0], steps[0] + len(steps))):
            raise ValueError(f"recorded {kind!r} stream of run {run!r} has gaps; replay needs "
                             f"every step (record it with every=1)")
        states: dict[str, dict[str, dict]] = {k: {} for k in chains}
        for t in steps:
            rs = by_step[t]
            names = [r.layer for r in rs]
            gs = [g.float() for g in store.get_many(rs, verify=False)]
            out: dict[str, dict[str, torch.Tensor]] = {}
            for label, chain in chains.items():
                st = states[label]
                for n, g in zip(names, gs):
                    if n not in st:
                        st[n] = chain.init(g)
                ctx = StepContext(params=[torch.zeros_like(g) for g in gs], steps=[t] * len(gs),
                                  names=names, group={"lr": 1.0}, matrix=True)
                us = chain(list(gs), [st[n] for n in names], ctx)
                out[label] = dict(zip(names, us))
            if t == steps[0] or t % every == 0:
                yield t, dict(zip(names, gs)), out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """``⟨a, b⟩/(‖a‖_F‖b‖_F)`` in float64 (0 when either is zero)."""
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


# --- the recorded GPT runs shared by REG-2 and RM-1 ----------------------------------------------
#: The recording both REG-2 and RM-1 analyse (same spec → same cached run directory): the default
#: GPT of ``matbal.train`` for 400 steps, seed 0 (EQ-5's configuration), gradients of the hidden
#: matrices at every step, momenta (Muon: the Nesterov NS input) every 10, and the probes'
#: ``cos_adamw`` of the update every 10 steps (a cross-check of the offline replay).
RECORDING = {
    "model": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64, "batch_size": 32},
    "steps": 400, "warmup_steps": 20, "eval_every": 25, "eval_batches": 16, "seed": 0,
    "grad_every": 1, "momentum_every": 10, "probe_every": 10, "layers": "transformer.h.*",
}
RECORDING_QUICK = dict(RECORDING, model={"n_layer": 1, "n_head": 2, "n_embd": 16,
                                         "block_size": 16, "batch_size": 8},
                       steps=12, warmup_steps=2, eval_every=6, eval_batches=2, momentum_every=4,
                       probe_every=4)


def recorded_gpt(spec: Mapping[str, Any], stream: str, *, results_dir=None,
                 reuse: bool = True) -> dict[str, Any]:
    """The GPT run of ``spec`` (:data:`RECORDING`) trained by preset ``stream`` (lr from
    ``best_lrs.json``), recorded by :func:`record_run` under ``runs_root("recorded_gpt")``."""
    from ..train import TrainConfig

    base = TrainConfig(model="gpt", steps=spec["steps"], warmup_steps=spec["warmup_steps"],
                       eval_every=spec["eval_every"], eval_batches=spec["eval_batches"],
                       log_every=spec["eval_every"], device="cpu", **spec["model"])
    record = {"grad": spec["grad_every"]}
    probes = None
    if stream != "adamw":  # AdamW's chain has no momentum step, and its cos_adamw is 1
        record["momentum"] = spec["momentum_every"]
        probes = {"kinds": ("update",), "every": spec["probe_every"], "exact_every": None}
    return record_run(base, Arm(stream, stream), spec["seed"],
                      out_dir=runs_root("recorded_gpt", results_dir), record=record,
                      layers=spec["layers"], probes=probes, reuse=reuse)


#: Short Muon runs of the char GPT at several widths, shared by SC-1 (momentum spectra vs width)
#: and RM-1's width series: 2 layers, 4 heads, block 64, batch 32 — :data:`RECORDING`'s model with
#: ``n_embd`` = each of ``widths`` — 200 steps, seed 0, momenta (Muon's Nesterov NS input) and
#: gradients of the hidden matrices every ``record_every`` steps. ``lr`` is the Muon lr EQ-5's ×2
#: sweep chose at width 64 (0.05; AdamW group 0.003) and is kept at every width. The argument:
#: Muon's step ``lr·√max(1, m/n)·polar(M)`` has spectral norm ``lr·√max(1, m/n)``, which does not
#: change with width at a fixed aspect ratio — the spectral condition behind μP-style transfer
#: (Yang, Simon & Bernstein, arXiv 2310.17813). Moonlight (arXiv 2502.16982) scales by
#: ``0.2·√max(m, n)`` instead, to reuse AdamW's lr; that one lr is right at every width here is an
#: assumption, which SC-1 checks at one width with ``lr/2`` and ``2·lr``.
WIDTH_RECORDING = {
    "model": {"n_layer": 2, "n_head": 4, "block_size": 64, "batch_size": 32},
    "widths": [64, 128, 256, 512], "steps": 200, "warmup_steps": 20, "eval_every": 50,
    "eval_batches": 8, "seed": 0, "optimizer": "muon", "lr": 0.05, "adamw_lr": 0.003,
    "record_every": 10, "layers": "transformer.h.*",
}
WIDTH_RECORDING_QUICK = dict(WIDTH_RECORDING, model={"n_layer": 2, "n_head": 2, "block_size": 16,
                                                     "batch_size": 8},
                             widths=[16, 32, 64], steps=12, warmup_steps=2, eval_every=6,
                             eval_batches=2, record_every=3)


def recorded_gpt_at_width(spec: Mapping[str, Any], width: int, *, lr: float | None = None,
                          results_dir=None, reuse: bool = True) -> dict[str, Any]:
    """The GPT of ``spec`` (:data:`WIDTH_RECORDING`) with ``n_embd = width`` trained by
    ``spec["optimizer"]`` at ``lr`` (``None``: ``spec["lr"]``), momenta and gradients recorded by
    :func:`record_run` every ``spec["record_every"]`` steps under
    ``runs_root("recorded_gpt_width")``; the store's run name is the arm label
    ``<optimizer>-w<width>-lr<lr>``. Same spec, width and lr → the same cached run. The model
    config is :func:`char_gpt_base` of ``spec`` with ``n_embd = width`` (``threads``: torch's
    default unless ``spec`` sets it)."""
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if width % spec["model"]["n_head"]:
        raise ValueError(f"width={width} must be a multiple of n_head={spec['model']['n_head']}")
    lr = float(spec["lr"] if lr is None else lr)
    base = char_gpt_base({"threads": 0, **spec}, n_embd=width)
    arm = Arm(f"{spec['optimizer']}-w{width}-lr{lr:g}", spec["optimizer"], lr=lr,
              adamw_lr=spec["adamw_lr"])
    every = spec["record_every"]
    return record_run(base, arm, spec["seed"], out_dir=runs_root("recorded_gpt_width", results_dir),
                      record={"grad": every, "momentum": every}, layers=spec["layers"],
                      reuse=reuse)


#: One colour per optimizer / direction in the training figures.
OPTIMIZER_COLORS = {
    "adamw": "#4d4d4d", "muon": "#1f77b4", "muoneq-r": "#d62728", "muoneq-rc": "#2ca02c",
    "muon-moonlight-scale": "#9467bd", "reg": "#ff7f0e", "rmnp": "#8c564b",
    "momentum_0.9": "#bcbd22", "ns5_momentum_0.9": "#17becf", "polar-m": "#e377c2",
    "polar-rm": "#7f7f7f",
}
OPTIMIZER_LABELS = {
    "adamw": "AdamW", "muon": "Muon", "muoneq-r": "MuonEq-R", "muoneq-rc": "MuonEq-RC",
    "muon-moonlight-scale": "Muon, MuonEq's scale", "reg": "REG", "rmnp": "RMNP (R, no NS)",
    "momentum_0.9": "momentum β=0.9", "ns5_momentum_0.9": "NS5(momentum β=0.9)",
    "polar-m": "polar(M), MuonEq's scale", "polar-rm": "polar(R(M))",
}


def interleaved_step_times(base, arms: Sequence[Arm], *, rounds: int = 8, steps: int = 5,
                           seed: int = 0) -> dict[str, dict[str, float]]:
    """Step time of each arm measured round-robin (``rounds`` × every arm × ``steps`` training
    steps on one fixed batch), so load from other processes on a shared machine hits every arm
    alike. Returns per label the median over rounds of the full step (forward, backward, clip,
    ``optimizer.step()``) and of ``optimizer.step()`` alone, in ms."""
    import time

    from ..train.loop import build_optimizer
    from ..train.lrs import resolve_lr
    from ..train.tasks import make_task

    register_lab_presets()
    setups = {}
    for arm in arms:
        cfg = arm.config(base, seed=seed, out_dir=Path("."))
        lr, adamw_lr, _ = resolve_lr(cfg.model, cfg.optimizer, cfg.lr, cfg.adamw_lr)
        cfg = cfg.replace(lr=lr, adamw_lr=None if cfg.optimizer == "adamw" else adamw_lr)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            task = make_task(cfg)
        opt = build_optimizer(cfg, task.model)
        setups[arm.label] = (task.model, opt, task.batcher.next(), cfg.grad_clip)
    times = {k: {"step": [], "opt": []} for k in setups}
    for _ in range(rounds):
        for label, (model, opt, (x, y), clip) in setups.items():
            t_all = t_opt = 0.0
            for _ in range(steps):
                t0 = time.perf_counter()
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                         y.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                t1 = time.perf_counter()
                opt.step()
                t2 = time.perf_counter()
                t_all += t2 - t0
                t_opt += t2 - t1
            times[label]["step"].append(1e3 * t_all / steps)
            times[label]["opt"].append(1e3 * t_opt / steps)
    return {k: {"step_ms": float(np.median(v["step"])), "optimizer_ms": float(np.median(v["opt"]))}
            for k, v in times.items()}
