"""Where in a chain each tensor kind is observed, and how taps are installed and removed.

Kinds (per matrix parameter, per step; positions found from the chain's transform types):

- ``"grad"``: the chain's input (the gradient as a matrix view ``(out, in·k·k)``), before
  transform 0;
- ``"momentum"``: the output of the first momentum transform (``ema_momentum``/``sum_momentum``:
  the post-Nesterov update when Nesterov is on);
- ``"ns_input"``: the input of the first ``orthogonalize`` step (so after any balancing: the
  balanced input to NS); in a chain with balancing but no orthogonalize (REG, SinkGD) the output of
  the last ``balance`` step;
- ``"update"``: the output of the last transform that is not a trailing ``add_decayed_weights``:
  the preconditioned direction ``u`` with ``p ← p − lr·(u + λp)``. Decoupled weight decay is left
  out on purpose: it is not part of the direction the optimizers differ in (REG-2 compares those).

A kind the chain does not have (``momentum`` in a plain AdamW chain) is not observed for that group.

Taps are installed by *wrapping* the observed transform in :class:`Instrumented` (an identity
around it that calls :class:`~matbal.optim.transforms.Tap` objects before/after it) instead of
inserting new transforms, so the chain keeps its length, every state key ``"<i>.<key>"`` keeps its
index and ``repr(chain)`` is unchanged: attach and detach work at any time, also mid-run, and
checkpoints taken with or without instruments load into each other.

>>> from matbal.optim import Chain
>>> from matbal.optim.transforms import ema_momentum, orthogonalize, add_decayed_weights
>>> sorted(tap_points(Chain(ema_momentum(), orthogonalize(), add_decayed_weights(0.1))).items())
[('grad', (0, 'pre')), ('momentum', (0, 'post')), ('ns_input', (1, 'pre')), ('update', (1, 'post'))]
"""
from __future__ import annotations

from typing import Callable

from ...optim.chain import Chain
from ...optim.transforms import (AddDecayedWeights, Balance, EMAMomentum, Orthogonalize,
                                 SumMomentum, Tap, Transform)

__all__ = ["KINDS", "Instrumented", "tap_points", "base_transform", "instrument", "strip"]

#: Tensor kinds an instrument can observe, in chain order.
KINDS = ("grad", "momentum", "ns_input", "update")


def base_transform(t: Transform) -> Transform:
    """The transform under any number of :class:`Instrumented` wrappers."""
    while isinstance(t, Instrumented):
        t = t.inner
    return t


def tap_points(chain: Chain) -> dict[str, tuple[int, str]]:
    """``kind → (transform index, "pre" | "post")`` for the kinds ``chain`` has (module doc)."""
    ts = [base_transform(t) for t in chain]
    out: dict[str, tuple[int, str]] = {"grad": (0, "pre")}
    mom = [i for i, t in enumerate(ts) if isinstance(t, (EMAMomentum, SumMomentum))]
    if mom:
        out["momentum"] = (mom[0], "post")
    orth = [i for i, t in enumerate(ts) if isinstance(t, Orthogonalize)]
    bal = [i for i, t in enumerate(ts) if isinstance(t, Balance)]
    if orth:
        out["ns_input"] = (orth[0], "pre")
    elif bal:
        out["ns_input"] = (bal[-1], "post")
    last = len(ts) - 1
    while last > 0 and isinstance(ts[last], AddDecayedWeights):
        last -= 1
    out["update"] = (last, "post")
    return out


class Instrumented(Transform):
    """Identity wrapper: taps ``pre`` see the inner transform's input, taps ``post`` its output.

    ``init``/``apply`` delegate to ``inner`` (same state keys); ``repr`` is the inner's, so
    ``state_dict`` chain descriptions are unchanged. ``owner`` marks who installed it (for
    :func:`strip`)."""

    name = "instrumented"

    def __init__(self, inner: Transform, *, pre=(), post=(), owner=None):
        self.inner, self.pre, self.post, self.owner = inner, tuple(pre), tuple(post), owner

    def init(self, update):
        return self.inner.init(update)

    def apply(self, updates, states, ctx):
        for t in self.pre:
            t.apply(updates, [], ctx)
        out = self.inner.apply(updates, states, ctx)
        for t in self.post:
            t.apply(out, [], ctx)
        return out

    def __repr__(self) -> str:
        return repr(self.inner)


def instrument(chain: Chain, kinds, callback: Callable, owner) -> tuple[Chain, dict]:
    """A new chain whose transforms at ``tap_points`` of ``kinds`` call ``callback(kind, updates,
    ctx)``; returns ``(chain, {kind: (index, side)})`` for the kinds placed."""
    points = {k: v for k, v in tap_points(chain).items() if k in kinds}
    ts = list(chain)
    for i in sorted({i for i, _ in points.values()}):
        pre = [Tap(callback, label=k) for k in KINDS if points.get(k) == (i, "pre")]
        post = [Tap(callback, label=k) for k in KINDS if points.get(k) == (i, "post")]
        ts[i] = Instrumented(ts[i], pre=pre, post=post, owner=owner)
    return Chain(*ts), points


def _strip(t: Transform, owner) -> Transform:
    if not isinstance(t, Instrumented):
        return t
    inner = _strip(t.inner, owner)
    if t.owner is owner:
        return inner
    t.inner = inner
    return t


def strip(chain: Chain, owner) -> Chain:
    """``chain`` without the wrappers installed by ``owner`` (others' wrappers stay)."""
    return Chain(*[_strip(t, owner) for t in chain])
