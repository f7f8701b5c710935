"""Training (layer 5 of matbal): small models on real offline data, on CPU, a GPU, or several processes.

- :class:`TrainConfig` — one flat, typed config; every field is a ``--key value`` option.
- :func:`train` — the loop (warmup + cosine/WSD schedule, clipping, validation, atomic
  checkpoints with bit-exact resume, run directory with metrics), returning a :class:`TrainResult`.
- Models (:mod:`~matbal.train.models`): a character-level GPT (nanoGPT-style) on the Python
  standard library's source; an MLP and a CNN on scikit-learn's digits.
- :func:`~matbal.train.compare.run_compare` / :func:`~matbal.train.compare.run_sweep` — several optimizers × seeds, a
  table (CSV + Markdown) and a loss-curve figure; learning rates from a stored sweep.
- Several processes: ``torchrun --nproc_per_node=N -m matbal.train ...`` (DDP; matrix chains split
  across ranks by :class:`matbal.optim.distributed.DistributedChainOptimizer`); see
  :mod:`matbal.train.distributed` for several nodes.

>>> from matbal.train import TrainConfig, train
>>> cfg = TrainConfig(model="gpt", optimizer="muoneq-r", steps=50, quiet=True)
>>> result = train(cfg)                   # doctest: +SKIP
"""
from .config import TrainConfig, parse_config
from .loop import TrainResult, build_optimizer, train

__all__ = ["TrainConfig", "parse_config", "train", "TrainResult", "build_optimizer"]
