"""Real data available offline: the Python standard library's source (characters) and sklearn digits.

Character corpus
----------------
:func:`stdlib_corpus` concatenates the top-level ``*.py`` files of ``sysconfig.get_paths()["stdlib"]``
(sorted by name, joined by ``"\\n"``; ≈ 4.7 M characters, vocabulary ≈ 166 on CPython 3.11).
The vocabulary is the sorted set of characters; ids are ``uint8`` when it has ≤ 256 symbols. The
encoded corpus is cached in ``$MATBAL_CACHE`` or ``$XDG_CACHE_HOME/matbal`` or
``~/.cache/matbal`` (never in the repository), keyed by a hash of the file list, sizes and mtimes.
Split: the first ``1 − val_frac`` of the characters train, the tail validates (deterministic).

A second, shifted text for fine-tuning experiments (REG-3): :func:`pydoc_topics_text`, the Python
documentation topics bundled with the standard library (``pydoc_data.topics``: English prose with
code samples, ≈ 0.47 M characters on CPython 3.11). :func:`char_corpus` names the corpora
(:data:`CORPORA`): ``"stdlib"`` is :func:`stdlib_corpus` unchanged (its own vocabulary);
``"code"`` (the same stdlib source) and ``"docs"`` (the pydoc topics) are encoded in one *shared*
vocabulary — the union of both texts' characters — so a model trained on one runs on the other.

Batches
-------
:class:`TokenBatcher` draws a *global* batch of ``B`` random windows of length ``T + 1`` from its own
``torch.Generator`` (seeded from the run seed), so the data position is the generator state plus a
counter — both saved in checkpoints as tensors. Under data parallelism every rank draws the same
global batch and keeps rows ``[r·B/W, (r+1)·B/W)``, so a W-process run sees exactly the data of a
1-process run with the same global batch.

>>> from matbal.train.data import stdlib_corpus, TokenBatcher
>>> corpus = stdlib_corpus()                                    # doctest: +SKIP
>>> xb, yb = TokenBatcher(corpus.train, batch_size=4, block_size=8, seed=0).next()  # doctest: +SKIP
>>> xb.shape, yb.shape                                           # doctest: +SKIP
(torch.Size([4, 8]), torch.Size([4, 8]))
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["CharCorpus", "stdlib_corpus", "stdlib_files", "cache_dir", "TokenBatcher",
           "ArrayBatcher", "Digits", "load_digits_split", "CORPORA", "char_corpus",
           "pydoc_topics_text"]

#: Corpus names for :func:`char_corpus` (module docstring).
CORPORA = ("stdlib", "code", "docs")


def cache_dir() -> Path:
    """Cache folder for derived data (never inside the repository)."""
    root = os.environ.get("MATBAL_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base / "matbal"
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "matbal-cache"


def stdlib_files() -> list[Path]:
    """Top-level ``*.py`` files of the standard library, sorted by name."""
    root = sysconfig.get_paths()["stdlib"]
    files = sorted(Path(p) for p in glob.glob(os.path.join(root, "*.py")))
    if not files:
        raise FileNotFoundError(f"no *.py files in the standard library folder {root}")
    return files


@dataclass(frozen=True)
class CharCorpus:
    """An encoded character corpus: ``train``/``val`` id tensors (uint8 or int16) and the vocabulary."""

    train: torch.Tensor
    val: torch.Tensor
    vocab: str
    source: str

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def encode(self, text: str) -> torch.Tensor:
        stoi = {c: i for i, c in enumerate(self.vocab)}
        return torch.tensor([stoi[c] for c in text], dtype=torch.long)


def _encode(text: str) -> tuple[np.ndarray, str]:
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    uniq, ids = np.unique(codepoints, return_inverse=True)
    vocab = "".join(map(chr, uniq.tolist()))
    dtype = np.uint8 if len(vocab) <= 256 else np.int16
    return ids.astype(dtype), vocab


def stdlib_corpus(*, val_frac: float = 0.1, use_cache: bool = True) -> CharCorpus:
    """The standard library's top-level source as a character corpus (see module docstring)."""
    if not 0.0 < val_frac < 1.0:
        raise ValueError(f"val_frac must lie in (0, 1), got {val_frac}")
    files = stdlib_files()
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = h.hexdigest()[:16]
    cdir = cache_dir() / "stdlib-chars"
    npy, meta = cdir / f"{key}.npy", cdir / f"{key}.json"
    ids = vocab = None
    if use_cache and npy.exists() and meta.exists():
        try:
            ids = np.load(npy)
            vocab = json.loads(meta.read_text())["vocab"]
        except (OSError, ValueError, KeyError):
            ids = vocab = None
    if ids is None:
        text = "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
        ids, vocab = _encode(text)
        if use_cache:
            try:
                cdir.mkdir(parents=True, exist_ok=True)
                tmp = cdir / f".{key}.{os.getpid()}.npy"
                np.save(tmp, ids)
                os.replace(tmp, npy)
                meta.write_text(json.dumps({"vocab": vocab, "files": len(files),
                                            "chars": int(ids.size)}))
            except OSError:
                pass  # a read-only cache is not an error
    data = torch.from_numpy(np.ascontiguousarray(ids))
    n_val = int(round(val_frac * data.numel()))
    return CharCorpus(train=data[:-n_val], val=data[-n_val:], vocab=vocab,
                      source=f"{len(files)} top-level *.py files of {files[0].parent}")


def pydoc_topics_text() -> str:
    """The documentation topics bundled with pydoc (``pydoc_data.topics.topics``): the texts
    sorted by topic name, joined by ``"\\n"``. Deterministic for a given Python; no download."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:  # pragma: no cover - part of every CPython install
        raise FileNotFoundError("pydoc_data.topics is not available in this Python") from e
    return "\n".join(topics[k] for k in sorted(topics))


def _split(data: torch.Tensor, val_frac: float) -> tuple[torch.Tensor, torch.Tensor]:
    n_val = int(round(val_frac * data.numel()))
    return data[:-n_val], data[-n_val:]


def char_corpus(name: str = "stdlib", *, val_frac: float = 0.1, use_cache: bool = True
                ) -> CharCorpus:
    """A character corpus by name (:data:`CORPORA`): ``"stdlib"`` = :func:`stdlib_corpus`;
    ``"code"`` / ``"docs"`` = the stdlib source / the pydoc topics in the shared code+docs
    vocabulary (sorted union of both texts' characters). Split as :func:`stdlib_corpus`: the tail
    ``val_frac`` of the characters validates.

    >>> code, docs = char_corpus("code"), char_corpus("docs")       # doctest: +SKIP
    >>> code.vocab == docs.vocab                                      # doctest: +SKIP
    True
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {list(CORPORA)}, got {name!r}")
    base = stdlib_corpus(val_frac=val_frac, use_cache=use_cache)
    if name == "stdlib":
        return base
    docs_text = pydoc_topics_text()
    vocab = "".join(sorted(set(base.vocab) | set(docs_text)))
    dtype = torch.uint8 if len(vocab) <= 256 else torch.int16
    if name == "code":  # the stdlib ids re-mapped into the shared vocabulary (same split)
        lut = torch.tensor([vocab.index(c) for c in base.vocab], dtype=torch.long)
        return CharCorpus(train=lut[base.train.long()].to(dtype), val=lut[base.val.long()].to(dtype),
                          vocab=vocab, source=base.source + " (shared code+docs vocabulary)")
    codepoints = np.frombuffer(docs_text.encode("utf-32-le"), dtype=np.uint32)
    uniq = np.array([ord(c) for c in vocab], dtype=np.uint32)
    ids = torch.from_numpy(np.searchsorted(uniq, codepoints).astype(np.int64)).to(dtype)
    train, val = _split(ids, val_frac)
    return CharCorpus(train=train, val=val, vocab=vocab,
                      source=f"pydoc_data.topics ({len(docs_text)} characters; shared code+docs "
                             f"vocabulary)")


class TokenBatcher:
    """Random windows ``x = d[i:i+T]``, ``y = d[i+1:i+T+1]`` from a 1-D id tensor.

    ``next()`` returns ``(x, y)`` of shape ``(B/W, T)`` (int64) — this rank's rows of the global
    batch. ``state_dict()`` / ``load_state_dict()`` hold the generator state (uint8 tensor) and the
    number of batches drawn.
    """

    def __init__(self, data: torch.Tensor, *, batch_size: int, block_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if data.ndim != 1 or data.numel() <= block_size + 1:
            raise ValueError(f"data must be 1-D and longer than block_size+1 ({block_size + 1}), "
                             f"got shape {tuple(data.shape)}")
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of "
                             f"processes ({world_size})")
        self.data, self.B, self.T = data, batch_size, block_size
        self.rank, self.world = rank, world_size
        self.gen = torch.Generator().manual_seed(seed)
        self.batches = 0
        self._offsets = torch.arange(block_size + 1)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, self.data.numel() - self.T - 1, (self.B,), generator=self.gen)
        self.batches += 1
        per = self.B // self.world
        starts = starts[self.rank * per:(self.rank + 1) * per]
        win = self.data[starts[:, None] + self._offsets].long()
        return win[:, :-1], win[:, 1:]

    def state_dict(self) -> dict:
        return {"generator": self.gen.get_state(), "batches": self.batches}

    def load_state_dict(self, sd: dict) -> None:
        self.gen.set_state(sd["generator"])
        self.batches = int(sd["batches"])


class ArrayBatcher:
    """Random minibatches (with replacement) of rows of ``(X, y)``; same contract as TokenBatcher."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of "
                             f"processes ({world_size})")
        self.x, self.y, self.B = x, y, batch_size
        self.rank, self.world = rank, world_size
        self.gen = torch.Generator().manual_seed(seed)
        self.batches = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.x.shape[0], (self.B,), generator=self.gen)
        self.batches += 1
        per = self.B // self.world
        idx = idx[self.rank * per:(self.rank + 1) * per]
        return self.x[idx], self.y[idx]

    state_dict = TokenBatcher.state_dict
    load_state_dict = TokenBatcher.load_state_dict


@dataclass(frozen=True)
class Digits:
    """sklearn digits as tensors: images ``(N, 1, 8, 8)`` float32 in [0, 1], labels int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int = 10


def load_digits_split(*, val_frac: float = 0.1, split_seed: int = 0) -> Digits:
    """scikit-learn's bundled digits (1797 images; no download), split by a fixed permutation
    (``split_seed``, independent of the training seed so every run validates on the same images)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - dependency declared in pyproject
        raise ImportError("the digits models need scikit-learn (pip install scikit-learn)") from e
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(split_seed))
    n_val = int(round(val_frac * x.shape[0]))
    va, tr = perm[:n_val], perm[n_val:]
    return Digits(x[tr], y[tr], x[va], y[va])
