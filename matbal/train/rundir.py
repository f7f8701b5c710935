"""The run directory: what a run writes besides checkpoints.

Layout of ``out_dir/run_name/``::

    config.json      the TrainConfig (lr/weight_decay resolved to the values used)
    env.json         code version (git SHA + dirty flag, or "unknown"), python/torch/numpy versions,
                     device, world size, parameter count
    metrics.jsonl    one JSON object per logged step: step, train_loss, val_loss (null when not
                     evaluated), lr (first param group's), tokens_per_s, step_time_s
    summary.json     written at the end: final/best validation loss, wall time, mean step time …
    checkpoint.pt    (see :mod:`matbal.train.checkpoint`)
    tb/              TensorBoard event files, when tensorboard is importable (optional)

Only rank 0 writes these files.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["code_version", "library_versions", "MetricsWriter", "write_json", "read_metrics",
           "default_run_name"]


def code_version(path: str | os.PathLike | None = None, *,
                 ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{"git_sha": str, "dirty": bool}`` of the repository holding ``path`` (default: matbal's
    source), or ``{"git_sha": "unknown", "dirty": None}`` outside a repository / without git.

    ``ignore``: path prefixes (relative to the repository root) whose changes do not make the tree
    dirty — generated outputs such as ``experiments/results/``, which a run of several experiments
    rewrites as it goes."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return {"git_sha": "unknown", "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=where, capture_output=True, text=True, timeout=10)
        changed = [line[3:].split(" -> ")[-1] for line in status.stdout.splitlines() if line.strip()]
        dirty = any(not c.startswith(tuple(ignore)) for c in changed) if ignore else bool(changed)
        return {"git_sha": sha.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "dirty": None}


def library_versions() -> dict[str, str]:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def default_run_name(cfg) -> str:
    return f"{cfg.model}-{cfg.optimizer}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class MetricsWriter:
    """Appends records to ``metrics.jsonl`` (and TensorBoard scalars when enabled).

    ``truncate_after(step)`` drops records of steps > ``step`` (used on resume, so the steps
    replayed after the last checkpoint are not written twice).
    """

    def __init__(self, run_dir: Path, *, tensorboard: str = "auto", enabled: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled and tensorboard != "off":
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except ImportError:
                if tensorboard == "on":
                    raise ImportError("tensorboard='on' needs the tensorboard package "
                                      "(pip install tensorboard)") from None

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path.parent) if r["step"] <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
