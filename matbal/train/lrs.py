"""Learning rates chosen by a sweep, stored as data: ``best_lrs.json`` (model → optimizer → lr).

``matbal compare --sweep 1e-3,3e-3,1e-2 ...`` writes a ``best_lrs.json`` of the same shape into its
results folder; pass it to ``matbal compare --lrs PATH`` or copy it over the packaged file
(``matbal/train/best_lrs.json``), which is what a run with ``lr=None`` and ``compare`` read by
default. Each entry keeps how it was obtained::

    {"gpt": {"muon": {"lr": 0.02, "adamw_lr": 0.003, "swept": [0.005, 0.01, 0.02, 0.05],
                      "steps": 200, "final_val_loss": 2.31, "command": "matbal compare ..."}}}

``adamw_lr`` (optional) is the lr the sweep gave the AdamW group (embeddings, gains, head) of a
matrix preset; it is applied with the entry unless the run sets ``adamw_lr`` itself.

The packaged table's sweep (commands and full tables) is documented in ``best_lrs.md`` beside it.

Resolution order for a run's lr (see :func:`resolve_lr`): the config's ``lr`` → the entry for
``(model, optimizer)`` in the given table → the preset's own default (a warning says so).
"""
from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path
from typing import Any

__all__ = ["BEST_LRS_PATH", "load_best_lrs", "resolve_lr", "preset_default", "merge_best_lrs"]

BEST_LRS_PATH = Path(__file__).with_name("best_lrs.json")


def load_best_lrs(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The table at ``path`` (default: the packaged one; ``{}`` if that is missing)."""
    p = Path(path) if path is not None else BEST_LRS_PATH
    if not p.exists():
        if path is not None:
            raise FileNotFoundError(f"lrs file {p} does not exist")
        return {}
    table = json.loads(p.read_text())
    return {k: v for k, v in table.items() if not k.startswith("_")}


def preset_default(optimizer: str, name: str = "lr"):
    """The default of keyword ``name`` in the preset's signature (``None`` if it has none)."""
    from ..optim import PRESETS

    param = inspect.signature(PRESETS[optimizer]).parameters.get(name)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def resolve_lr(model: str, optimizer: str, lr: float | None = None,
               adamw_lr: float | None = None, *, table: dict | None = None
               ) -> tuple[float, float | None, str]:
    """``(lr, adamw_lr, source)``; ``source`` is ``"config"``, ``"best_lrs"`` or ``"preset default"``.

    An explicit ``lr`` wins (``adamw_lr`` is then left as given). Otherwise the table's entry gives
    ``lr`` and, when the sweep fixed one and ``adamw_lr`` is ``None``, the AdamW group's lr.
    """
    if lr is not None:
        return float(lr), adamw_lr, "config"
    table = load_best_lrs() if table is None else table
    entry = table.get(model, {}).get(optimizer)
    if entry is not None:
        if not isinstance(entry, dict):
            return float(entry), adamw_lr, "best_lrs"
        if adamw_lr is None and entry.get("adamw_lr") is not None:
            adamw_lr = float(entry["adamw_lr"])
        return float(entry["lr"]), adamw_lr, "best_lrs"
    default = preset_default(optimizer)
    warnings.warn(f"no swept lr for model={model!r}, optimizer={optimizer!r}; using the preset's "
                  f"default lr={default}", stacklevel=2)
    return float(default), adamw_lr, "preset default"


def merge_best_lrs(*sources: str | Path, into: str | Path = BEST_LRS_PATH) -> dict:
    """Merge the ``best_lrs.json`` files written by sweeps into ``into`` (later sources win per
    (model, optimizer)); keeps ``into``'s and the sources' ``_config``/``_comment`` notes per model.

    >>> merge_best_lrs("results/sweep-gpt-1/best_lrs.json", into="my_lrs.json")  # doctest: +SKIP
    """
    into = Path(into)
    table = json.loads(into.read_text()) if into.exists() else {}
    for src in sources:
        new = json.loads(Path(src).read_text())
        models = [k for k in new if not k.startswith("_")]
        for model in models:
            table.setdefault(model, {}).update(new[model])
            if "_config" in new:
                table.setdefault("_config", {})[model] = new["_config"]
    table.setdefault("_comment", "best lr per model and optimizer from `matbal compare --sweep` "
                     "(see matbal/train/lrs.py); each entry records its sweep command")
    tmp = into.with_name(f".{into.name}.tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    tmp.replace(into)
    return table
