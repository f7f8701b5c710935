"""One flat, typed training configuration with ``--key value`` command-line overrides.

Every field of :class:`TrainConfig` is a command-line option: ``--batch-size 16`` (or
``--batch_size 16``). Booleans take ``true/false/1/0/yes/no`` or stand alone (``--quiet``);
optional fields take ``none``. Values are type-checked when parsed and validated by
:meth:`TrainConfig.validate`, whose errors name the field and the value::

    >>> from matbal.train.config import TrainConfig, parse_config
    >>> cfg = parse_config(["--model", "gpt", "--steps", "20", "--n-embd", "32"])
    >>> cfg.steps, cfg.n_embd
    (20, 32)
    >>> TrainConfig(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps must be a positive integer, got 0

The configuration is saved with every run as ``config.json`` (:meth:`to_json`), with ``lr`` and
``weight_decay`` resolved to the values actually used.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import typing
from dataclasses import dataclass, fields
from typing import Any, Optional

__all__ = ["TrainConfig", "parse_config", "build_config_parser", "ConfigParser", "OptionError",
           "MODELS", "SCHEDULES", "DEFAULT_WARMUP_STEPS"]

MODELS = ("gpt", "mlp", "cnn")
SCHEDULES = ("cosine", "wsd", "constant")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
PARALLEL = ("ddp", "fsdp")
TENSORBOARD = ("auto", "on", "off")
DEFAULT_WARMUP_STEPS = 20  # warmup_steps=None: min(DEFAULT_WARMUP_STEPS, steps)
# fields that may differ between a checkpoint and the run that resumes it (they do not change the
# trajectory of parameters)
OPERATIONAL_FIELDS = frozenset({"resume", "quiet", "tensorboard", "out_dir", "run_name",
                                "log_every", "ckpt_every", "threads", "eval_every",
                                "eval_batches", "probe_every", "probe_exact_every",
                                "record_every", "record_kinds", "record_bf16"})


@dataclass
class TrainConfig:
    """Everything a training run depends on (flat; one field = one ``--option``).

    Model and data
    --------------
    model: ``"gpt"`` (character-level GPT on the Python standard library's source), ``"mlp"`` or
        ``"cnn"`` (scikit-learn digits, 8×8 images, 10 classes).
    n_layer, n_head, n_embd, block_size, dropout, bias, tie_weights: GPT shape (nanoGPT names);
        ``block_size`` is the context length T.
    mlp_hidden: hidden width of the MLP; cnn_channels: channels of the CNN's first conv.
    val_frac: fraction of the data held out for validation (the tail of the corpus; a fixed
        permutation of the digits).

    Optimization
    ------------
    optimizer: a name in :data:`matbal.optim.PRESETS`. lr: learning rate of every param group
        (``None``: the swept value from ``best_lrs.json`` for this model, else the preset's default).
    adamw_lr: lr of the AdamW group of matrix presets (``None``: same as ``lr``).
    weight_decay: ``None`` keeps the preset's default. optimizer_kwargs: JSON object of further
        preset keyword arguments, e.g. ``'{"ns_steps": 3}'``.
    steps: optimizer steps; batch_size: *global* batch (sequences or images per step, split over
        processes); grad_clip: max global gradient norm (0 disables).
    schedule: ``"cosine"`` (linear warmup, cosine to ``min_lr_ratio``), ``"wsd"`` (warmup, stable,
        linear decay over the last ``decay_frac`` of steps to ``min_lr_ratio``) or ``"constant"``.
    warmup_steps: linear warmup length (``None``: ``min(20, steps)``, so a short run never fails
        on the default; an explicit value above ``steps`` is an error).

    Running
    -------
    seed; device (``auto`` = cuda when available); precision (``auto`` = bf16 autocast on cuda,
    fp32 on cpu; ``bf16`` on a CPU works but is slow where the CPU lacks bf16 matmul units);
    parallel (several processes: ``ddp`` = DistributedDataParallel + matrix chains split by owner,
    ``fsdp`` = FSDP2 ``fully_shard`` per block + :mod:`matbal.optim.fsdp`); threads (torch CPU threads, 0 = torch's default); eval_every / eval_batches
    (validation cadence and size, GPT only — digits use the whole held-out set); log_every;
    ckpt_every (0 = checkpoint only at the end); out_dir / run_name (run directory
    ``out_dir/run_name``, name generated when empty); resume (``""``, ``"auto"`` = this run
    directory's checkpoint if present, or a checkpoint path); quiet (no progress bar);
    tensorboard (``auto`` = write event files when tensorboard is importable).

    Instruments (they never change the trajectory; 0 = off)
    -------------------------------------------------------
    probe_every: spectral probes (:class:`matbal.instruments.Probes`) of every matrix layer's
        grad / momentum / NS input / update every N steps, tidy rows to ``probes.jsonl`` in the run
        directory; probe_exact_every: exact float64-SVD metrics every N steps (0: 10×probe_every).
    record_every: record ``record_kinds`` (comma list of grad, momentum, ns_input, update, and
        param = the weights after the step) of every matrix layer every N steps into the matrix
        store ``store/`` in the run directory
        (:class:`matbal.instruments.MatrixStore`; ``matbal store ls|analyze`` reads it);
        record_bf16 stores them as bfloat16.
    """

    model: str = "gpt"
    optimizer: str = "muon"
    lr: Optional[float] = None
    adamw_lr: Optional[float] = None
    weight_decay: Optional[float] = None
    optimizer_kwargs: str = "{}"
    steps: int = 500
    batch_size: int = 32
    grad_clip: float = 1.0
    schedule: str = "cosine"
    warmup_steps: Optional[int] = None
    min_lr_ratio: float = 0.1
    decay_frac: float = 0.2
    # GPT
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True
    # digits models
    mlp_hidden: int = 128
    cnn_channels: int = 16
    val_frac: float = 0.1
    # running
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    parallel: str = "ddp"
    threads: int = 0
    eval_every: int = 50
    eval_batches: int = 16
    log_every: int = 10
    ckpt_every: int = 0
    out_dir: str = "runs"
    run_name: str = ""
    resume: str = ""
    quiet: bool = False
    tensorboard: str = "auto"
    # instruments
    probe_every: int = 0
    probe_exact_every: int = 0
    record_every: int = 0
    record_kinds: str = "grad,momentum"
    record_bf16: bool = False

    def __post_init__(self):
        self.validate()

    # --- validation --------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Check types and ranges; raise ``ValueError``/``TypeError`` naming the field."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        _choice(self, "model", MODELS)
        from ..optim import PRESETS  # late: the optimizer layer is heavy

        _choice(self, "optimizer", tuple(PRESETS))
        _choice(self, "schedule", SCHEDULES)
        _choice(self, "device", DEVICES)
        _choice(self, "precision", PRECISIONS)
        _choice(self, "parallel", PARALLEL)
        _choice(self, "tensorboard", TENSORBOARD)
        for name in ("steps", "batch_size", "n_layer", "n_head", "n_embd", "block_size",
                     "mlp_hidden", "cnn_channels", "eval_every", "eval_batches", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "adamw_lr"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")
        for name in ("weight_decay", "grad_clip"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        for name in ("warmup_steps", "ckpt_every", "threads", "seed", "probe_every",
                     "probe_exact_every", "record_every"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.optimizer == "adamw" and self.adamw_lr is not None:
            raise ValueError(f"adamw_lr sets the AdamW group of matrix presets; with "
                             f"optimizer='adamw' use lr (got adamw_lr={self.adamw_lr})")
        if self.warmup_steps is not None and self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must not exceed steps "
                             f"({self.steps})")
        for name in ("min_lr_ratio", "decay_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 < self.val_frac < 1.0:
            raise ValueError(f"val_frac must lie in (0, 1), got {self.val_frac}")
        if self.model == "gpt" and self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        self.optimizer_kwargs_dict()  # parses and checks the JSON
        from ..instruments.probes import ALL_KINDS as KINDS

        bad = [k for k in self.record_kinds.split(",") if k.strip() not in KINDS]
        if bad:
            raise ValueError(f"record_kinds must be a comma list of {list(KINDS)}, got {bad}")
        return self

    def warmup(self) -> int:
        """The warmup length used: ``warmup_steps``, or ``min(20, steps)`` when it is None."""
        return min(DEFAULT_WARMUP_STEPS, self.steps) if self.warmup_steps is None \
            else self.warmup_steps

    def optimizer_kwargs_dict(self) -> dict[str, Any]:
        """``optimizer_kwargs`` parsed (a JSON object)."""
        try:
            kw = json.loads(self.optimizer_kwargs)
        except json.JSONDecodeError as e:
            raise ValueError(f"optimizer_kwargs must be a JSON object, got "
                             f"{self.optimizer_kwargs!r} ({e})") from None
        if not isinstance(kw, dict):
            raise ValueError(f"optimizer_kwargs must be a JSON object, got {self.optimizer_kwargs!r}")
        return kw

    # --- (de)serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    def trajectory_diff(self, other: "TrainConfig") -> dict[str, tuple]:
        """Fields that differ and would change the training trajectory (used on resume)."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in OPERATIONAL_FIELDS and a[k] != b[k]}


class OptionError(ValueError):
    """A value that parsed but cannot be used (found when the run is set up: an optimizer
    keyword its preset refuses, an ``out_dir`` that cannot be created, a ``resume`` checkpoint
    that is missing or does not fit). ``option`` is the :class:`TrainConfig` field to blame;
    the command line reports it as ``argument --<option>: <message>`` with exit status 2."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


# --- helpers -------------------------------------------------------------------------------------
def _choice(cfg, name, choices):
    v = getattr(cfg, name)
    if v not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {v!r}")


def _base_type(tp):
    """``(type, optional)`` for ``int``, ``Optional[float]`` …"""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return tp, False


def _check_type(name, value, tp):
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return
        raise TypeError(f"{name} must be {base.__name__}, got None")
    ok = (isinstance(value, bool) if base is bool else
          isinstance(value, int) and not isinstance(value, bool) if base is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) if base is float else
          isinstance(value, base))
    if not ok:
        raise TypeError(f"{name} must be {base.__name__}, got {type(value).__name__} {value!r}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parser_for(base, optional):
    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        if base is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")
        try:
            v = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from None
        return float(v) if base is float else v
    parse.__name__ = base.__name__
    return parse


class ConfigParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that also accepts the underscore spelling of dashed options
    (``--batch_size`` for ``--batch-size``) without registering it: each ``--name_part``
    argument is read as ``--name-part``, so abbreviations stay unambiguous (``--out`` is
    ``--out-dir``) and ``--help`` lists one spelling. Option values and arguments after a bare
    ``--`` are left alone (register options with dashes only)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        for i in range(end):
            name, eq, value = args[i].partition("=")
            if name.startswith("--") and "_" in name:
                args[i] = name.replace("_", "-") + eq + value
        return super().parse_known_args(args, namespace)


def build_config_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add one ``--field-name`` option per :class:`TrainConfig` field (defaults left unset).
    A :class:`ConfigParser` (the default) also accepts ``--field_name``."""
    parser = parser or ConfigParser(prog="matbal train")
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        base, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        kw = dict(dest=f.name, default=argparse.SUPPRESS, type=_parser_for(base, optional),
                  help=f"{base.__name__}{' or none' if optional else ''} (default: {default!r})")
        if base is bool:
            kw.update(nargs="?", const=True)
        parser.add_argument(f"--{f.name.replace('_', '-')}", **kw)
    return parser


def parse_config(argv, *, base: TrainConfig | None = None,
                 parser: argparse.ArgumentParser | None = None) -> TrainConfig:
    """Parse ``--key value`` overrides onto ``base`` (default :class:`TrainConfig()`).

    Unknown options and badly typed values exit via ``argparse`` with a message naming the option;
    range errors (``--steps 0``) raise ``ValueError`` naming the field. ``parser`` (a
    :class:`ConfigParser` when given, to accept ``--field_name`` spellings) gets the options.
    """
    parser = build_config_parser(parser)
    ns = parser.parse_args(list(argv))
    overrides = vars(ns)
    base = base or TrainConfig()
    return dataclasses.replace(base, **overrides)

