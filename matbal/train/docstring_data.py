"""Offline text data for fine-tuning a real pretrained model: stdlib docstrings by package, and prose.

**Task** (:func:`docstring_dataset`): classify a docstring of the Python standard library by the
top-level package it comes from — 9 classes (:data:`PACKAGES`: asyncio, email, http, importlib,
logging, multiprocessing, unittest, urllib, xml), balanced (the same number per class), read with
:mod:`ast` from the installed stdlib's *source* (nothing is imported, nothing downloaded). A
docstring's text is its first paragraph, whitespace-normalized, ≥ ``min_chars`` characters;
duplicates (the same text in two places) are dropped. The split is deterministic: items are sorted
by (package, file, line), shuffled with a fixed seed, then cut into train/val/test
(``fractions``); the same Python version gives the same split, and :attr:`TextDataset.digest`
(a SHA-256 of texts and labels) tells two builds apart (the stdlib differs between Python versions).

**Retention probe** (:func:`prose_texts`): English prose that ships with Python —
``pydoc_data.topics.topics`` (the language reference's topic pages), one paragraph per topic
(the first of ≥ ``min_chars`` characters), topics in sorted order. It shares no text with the
docstrings and is never trained on; a fine-tuned encoder is compared with the original on it.

>>> ds = docstring_dataset(per_class=20)
>>> len(ds.classes), len(ds.train) + len(ds.val) + len(ds.test)
(9, 180)
>>> ds.digest == docstring_dataset(per_class=20).digest      # deterministic
True
>>> len(prose_texts(32))
32
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import random
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACKAGES", "TextDataset", "docstring_dataset", "stdlib_docstrings", "prose_texts"]

#: the 9 stdlib packages (present in Python 3.10-3.13) whose docstrings form the classes
PACKAGES = ("asyncio", "email", "http", "importlib", "logging", "multiprocessing", "unittest",
            "urllib", "xml")
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class TextDataset:
    """Texts with integer labels, split three ways; ``classes[label]`` names a label."""

    classes: tuple[str, ...]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[tuple[str, int]]
    digest: str

    def counts(self) -> dict[str, list[int]]:
        """Per split, the number of items per class."""
        return {name: [sum(1 for _, y in split if y == k) for k in range(len(self.classes))]
                for name, split in (("train", self.train), ("val", self.val), ("test", self.test))}


def _first_paragraph(doc: str) -> str:
    return _WS.sub(" ", doc.strip().split("\n\n")[0]).strip()


@functools.lru_cache(maxsize=32)
def stdlib_docstrings(package: str, *, min_chars: int = 40) -> tuple[tuple[str, str, int], ...]:
    """``(text, relative file, line)`` of every module/class/function docstring in ``package``
    (its tests excluded), first paragraphs of ≥ ``min_chars`` characters, in file/line order
    (parsed once per process)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    base = root / package
    if not base.is_dir():
        raise ValueError(f"package {package!r} is not a package directory of this Python's stdlib")
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("test") and d != "__pycache__")
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            path = Path(dirpath) / f
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        text = _first_paragraph(doc)
                        if len(text) >= min_chars:
                            out.append((text, str(path.relative_to(root)), getattr(node, "lineno", 0)))
    out.sort(key=lambda t: (t[1], t[2]))
    return tuple(out)


def docstring_dataset(*, per_class: int = 80, packages=PACKAGES, min_chars: int = 40,
                      fractions=(0.6, 0.2, 0.2), seed: int = 0) -> TextDataset:
    """The balanced, deterministic docstring-classification dataset (see the module docstring).

    ``per_class`` items per package (ValueError naming the package if it has fewer unique
    docstrings); each split is balanced too (``per_class·fraction`` per class, rounded down, the
    remainder to test)."""
    if not (isinstance(per_class, int) and per_class >= 3):
        raise ValueError(f"per_class must be an int ≥ 3, got {per_class!r}")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be 3 positive numbers summing to 1, got {fractions!r}")
    packages = tuple(packages)
    seen: set[str] = set()
    by_pkg = {}
    for pkg in packages:  # a text that occurs in two packages is dropped from both
        texts = [t for t, _, _ in stdlib_docstrings(pkg, min_chars=min_chars)]
        by_pkg[pkg] = list(dict.fromkeys(texts))
    counts: dict[str, int] = {}
    for texts in by_pkg.values():
        for t in texts:
            counts[t] = counts.get(t, 0) + 1
    n_train, n_val = int(per_class * fractions[0]), int(per_class * fractions[1])
    splits = {"train": [], "val": [], "test": []}
    for label, pkg in enumerate(packages):
        texts = [t for t in by_pkg[pkg] if counts[t] == 1 and t not in seen]
        seen.update(texts)
        if len(texts) < per_class:
            raise ValueError(f"package {pkg!r} has {len(texts)} unique docstrings; "
                             f"per_class={per_class} asks for more")
        rng = random.Random(f"{seed}:{pkg}")
        rng.shuffle(texts)
        chosen = texts[:per_class]
        splits["train"] += [(t, label) for t in chosen[:n_train]]
        splits["val"] += [(t, label) for t in chosen[n_train:n_train + n_val]]
        splits["test"] += [(t, label) for t in chosen[n_train + n_val:]]
    for name in splits:
        random.Random(f"{seed}:{name}").shuffle(splits[name])
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        for t, y in splits[name]:
            h.update(f"{name}\t{y}\t{t}\n".encode())
    return TextDataset(classes=packages, digest=h.hexdigest()[:16], **splits)


def prose_texts(n: int = 128, *, min_chars: int = 120, max_chars: int = 600) -> list[str]:
    """``n`` paragraphs of English prose from ``pydoc_data.topics``: every paragraph of ≥
    ``min_chars`` characters (code, tables and grammar excluded; duplicates once) in sorted-topic
    order, then ``n``
    of them evenly spaced (so they spread over the topics), each cut at ``max_chars``."""
    from pydoc_data.topics import topics

    paras = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            text = _WS.sub(" ", para).strip()
            if (len(text) >= min_chars and not para.startswith((" ", "\t"))
                    and not text.startswith(("***", ">>>", "|", "::="))):
                paras.append(text[:max_chars])
    paras = list(dict.fromkeys(paras))  # a paragraph repeated under two topics counts once
    if not (isinstance(n, int) and 2 <= n <= len(paras)):
        raise ValueError(f"n must be an int in [2, {len(paras)}] (the prose paragraphs of "
                         f"pydoc_data.topics), got {n!r}")
    return [paras[(i * len(paras)) // n] for i in range(n)]
