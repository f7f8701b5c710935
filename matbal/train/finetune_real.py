"""Fine-tune a real pretrained model with any matbal preset: accuracy, retention, weight movement.

The REG-3 question — does an optimizer that balances instead of orthogonalizing keep more of what an
AdamW-pretrained model knew? — measured on all-MiniLM-L6-v2 (:mod:`matbal.train.pretrained`):

- **task**: classify stdlib docstrings by package (9 balanced classes,
  :func:`matbal.train.docstring_data.docstring_dataset`) with the mean-pooled encoder + a linear
  head; the whole model is trained; ``val_acc`` picks learning rates, ``test_acc`` is reported;
- **retention** on prose the model never trains on (:func:`~matbal.train.docstring_data.prose_texts`):
  ``retention_cos`` = mean cosine between each text's sentence embedding before and after
  fine-tuning (1 = unchanged), and ``retention_spearman`` = Spearman correlation between the
  pairwise cosine-similarity matrices before and after (upper triangles; 1 = the geometry of the
  embedding space is kept);
- **weight movement** per layer type: median over layers of ``‖W − W₀‖_F / ‖W₀‖_F`` for query, key,
  value, attention output, FFN in and FFN out.

Arms differ only in how the hidden matrices are updated: parameters that are not hidden matrices
(embeddings, LayerNorms, biases, the new head) use AdamW at ``adamw_lr`` in every arm. The data order
and the head's initialisation depend on ``seed`` only, so arm ``a`` and arm ``b`` at the same seed are
paired (see :func:`matbal.lab.compare_arms`).

>>> r = finetune(FinetuneConfig(optimizer="muon", lr=0.02, steps=3, tiny=True, per_class=10,
...                             n_prose=8, batch_size=8), progress=False)   # doctest: +SKIP
>>> sorted(r)[:4]                                                          # doctest: +SKIP
['adamw_lr', 'config', 'retention_cos', 'retention_spearman']
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..optim import PRESETS
from .docstring_data import docstring_dataset, prose_texts
from .pretrained import SentenceClassifier, load_minilm, tiny_bert

__all__ = ["FinetuneConfig", "finetune", "retention", "weight_movement", "BERT_LAYER_TYPES",
           "bert_layer_type"]

#: BERT hidden-matrix types (name fragment → short label)
BERT_LAYER_TYPES = {"attention.self.query": "query", "attention.self.key": "key",
                    "attention.self.value": "value", "attention.output.dense": "attn_out",
                    "intermediate.dense": "ffn_in", "output.dense": "ffn_out"}
_LAYER_RE = re.compile(r"layer\.\d+\.(" + "|".join(re.escape(k) for k in BERT_LAYER_TYPES) + r")\.weight$")


def bert_layer_type(name: str) -> str | None:
    """``"bert.encoder.layer.3.intermediate.dense.weight"`` → ``"ffn_in"``; None for other params.

    >>> bert_layer_type("bert.encoder.layer.0.attention.output.dense.weight")
    'attn_out'
    """
    m = _LAYER_RE.search(name)
    return BERT_LAYER_TYPES[m.group(1)] if m else None


@dataclass
class FinetuneConfig:
    """One fine-tuning run. ``tiny=True`` swaps the pretrained MiniLM for a 2-layer random BERT
    (tests). ``precision="bf16-autocast"`` runs the model's forward and backward under
    ``torch.autocast(device_type="cpu", dtype=torch.bfloat16)`` (weights, gradients and optimizer
    state stay float32; evaluation too) — 3–5× faster on CPUs with AMX. ``lr`` is the matrix lr of a matrix preset (all params' lr for ``adamw``);
    ``adamw_lr`` is the AdamW lr of the non-matrix params (default: ``lr`` for ``adamw``, 1e-4
    otherwise)."""

    optimizer: str = "adamw"
    lr: float = 5e-5
    adamw_lr: float | None = None
    seed: int = 0
    steps: int = 150
    batch_size: int = 16
    max_len: int = 48
    warmup_steps: int = 10
    weight_decay: float = 0.0
    per_class: int = 80
    n_prose: int = 128
    tiny: bool = False
    precision: str = "fp32"  # or "bf16-autocast": forward/backward under torch.autocast(bf16)
    threads: int | None = None
    optimizer_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.optimizer not in PRESETS:
            raise ValueError(f"optimizer must be one of {sorted(PRESETS)}, got {self.optimizer!r}")
        for k in ("steps", "batch_size", "max_len", "per_class", "n_prose"):
            v = getattr(self, k)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"{k} must be a positive int, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ValueError(f"lr must be a number in (0, 10), got {self.lr!r}")
        if self.precision not in ("fp32", "bf16-autocast"):
            raise ValueError(f"precision must be 'fp32' or 'bf16-autocast', got {self.precision!r}")
        if not (isinstance(self.warmup_steps, int) and 0 <= self.warmup_steps):
            raise ValueError(f"warmup_steps must be an int ≥ 0, got {self.warmup_steps!r}")


def _encode(tok, texts, max_len):
    enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_len,
              return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@torch.no_grad()
def _embed(model: SentenceClassifier, ids, mask, batch: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([model.embed(ids[i:i + batch], mask[i:i + batch])
                      for i in range(0, len(ids), batch)]).double()


@torch.no_grad()
def _accuracy(model, ids, mask, y, batch: int = 64) -> float:
    model.eval()
    pred = torch.cat([model(ids[i:i + batch], mask[i:i + batch]).argmax(-1)
                      for i in range(0, len(ids), batch)])
    return float((pred == y).double().mean())


def retention(before: torch.Tensor, after: torch.Tensor) -> dict[str, float]:
    """Retention of embeddings ``(N, d)`` (unit rows): mean cosine of matching rows, and the
    Spearman correlation of the two pairwise-similarity matrices' upper triangles.

    >>> e = torch.nn.functional.normalize(torch.randn(6, 4, dtype=torch.float64), dim=-1)
    >>> {k: round(v, 6) for k, v in retention(e, e).items()}
    {'retention_cos': 1.0, 'retention_spearman': 1.0}
    """
    from scipy.stats import spearmanr

    cos = float((before * after).sum(-1).mean())
    iu = torch.triu_indices(len(before), len(before), 1)
    s0 = (before @ before.T)[iu[0], iu[1]].numpy()
    s1 = (after @ after.T)[iu[0], iu[1]].numpy()
    return {"retention_cos": cos, "retention_spearman": float(spearmanr(s0, s1).statistic)}


def weight_movement(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """Median over layers of ``‖W − W₀‖_F / ‖W₀‖_F`` per BERT layer type (see :data:`BERT_LAYER_TYPES`)."""
    per_type: dict[str, list[float]] = {}
    for name, p in model.named_parameters():
        kind = bert_layer_type(name)
        if kind is None or name not in before:
            continue
        w0 = before[name].double()
        per_type.setdefault(kind, []).append(float((p.detach().double() - w0).norm() / w0.norm()))
    return {k: float(np.median(v)) for k, v in per_type.items()}


def finetune(cfg: FinetuneConfig, *, progress: bool = True, data=None,
             instruments=()) -> dict[str, Any]:
    """Run one fine-tuning (see the module docstring); returns a JSON-friendly dict of results.

    ``data``: a prebuilt ``(dataset, prose)`` pair to share between runs (default: built here).
    ``instruments``: :class:`~matbal.instruments.probes.Probes` / ``Recorder`` objects, attached
    to the optimizer (names from the model, e.g. ``bert.encoder.layer.0.intermediate.dense.weight``)
    before the first step and closed after the last — e.g. record the gradients and momenta of
    the real 384×384, 1536×384 and 384×1536 matrices into a store."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    ds, prose = data if data is not None else (docstring_dataset(per_class=cfg.per_class),
                                                prose_texts(cfg.n_prose))
    bert, tok = tiny_bert(seed=0) if cfg.tiny else load_minilm()
    torch.manual_seed(cfg.seed)  # the head's init and the data order: paired across arms
    model = SentenceClassifier(bert, len(ds.classes))
    tr_ids, tr_mask = _encode(tok, [t for t, _ in ds.train], cfg.max_len)
    tr_y = torch.tensor([y for _, y in ds.train])
    va_ids, va_mask = _encode(tok, [t for t, _ in ds.val], cfg.max_len)
    va_y = torch.tensor([y for _, y in ds.val])
    te_ids, te_mask = _encode(tok, [t for t, _ in ds.test], cfg.max_len)
    te_y = torch.tensor([y for _, y in ds.test])
    pr_ids, pr_mask = _encode(tok, prose, cfg.max_len)
    emb0 = _embed(model, pr_ids, pr_mask)
    w0 = {n: p.detach().clone() for n, p in model.named_parameters() if bert_layer_type(n)}

    adamw_lr = cfg.adamw_lr if cfg.adamw_lr is not None else (
        cfg.lr if cfg.optimizer == "adamw" else 1e-4)
    kwargs = dict(cfg.optimizer_kwargs)
    kwargs.setdefault("weight_decay", cfg.weight_decay)
    if cfg.optimizer != "adamw":
        kwargs.setdefault("adamw_lr", adamw_lr)
    opt = PRESETS[cfg.optimizer](model, lr=cfg.lr, **kwargs)
    base = [g["lr"] for g in opt.param_groups]

    gen = torch.Generator().manual_seed(cfg.seed)
    order = torch.empty(0, dtype=torch.long)
    losses, step_times = [], []
    for inst in instruments:
        inst.attach(opt, model=model)
    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"finetune {cfg.optimizer} lr={cfg.lr:g} seed={cfg.seed}", leave=False)
    for step in it:
        if len(order) < cfg.batch_size:
            order = torch.cat([order, torch.randperm(len(tr_y), generator=gen)])
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        decay = 0.5 * (1 + math.cos(math.pi * step / cfg.steps))  # cosine to 0
        for g, lr0 in zip(opt.param_groups, base):
            g["lr"] = lr0 * warm * decay
        t0 = time.perf_counter()
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision != "fp32"):
            logits = model(tr_ids[idx], tr_mask[idx])
        loss = nn.functional.cross_entropy(logits.float(), tr_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    for inst in instruments:
        inst.close()
    emb1 = _embed(model, pr_ids, pr_mask)
    out = {"config": asdict(cfg), "adamw_lr": adamw_lr, "dataset_digest": ds.digest,
           "val_acc": _accuracy(model, va_ids, va_mask, va_y),
           "test_acc": _accuracy(model, te_ids, te_mask, te_y),
           **retention(emb0, emb1), "weight_change": weight_movement(w0, model),
           "train_loss": losses, "final_train_loss": losses[-1] if losses else math.nan,
           "diverged": not all(math.isfinite(v) for v in losses),
           "median_step_s": float(np.median(step_times)) if step_times else math.nan,
           "wall_s": time.perf_counter() - t_start}
    return out
