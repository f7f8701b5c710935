"""Spectral metrics: exact (``spectrum_report``, one float64 SVD) vs the estimators (``quick_stats``,
``spectral_norm_estimate`` lower/upper): time and relative error of ‖X‖₂. Then batched mat-vecs
(the power iteration's and Sinkhorn's inner product): torch's column form vs matbal's row form
(:mod:`matbal.kernels._matvec`) vs a loop of ``torch.mv``, alone and inside ``quick_stats`` /
``racs`` on a stack of same-shape matrices."""
from __future__ import annotations

import contextlib

import torch

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C
from matbal.kernels import _matvec
from matbal.kernels.balancing import _engine
from matbal.kernels.metrics import estimators


def column_matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a v`` the plain way, ``a @ v[..., None]`` (matbal's batched form before the row form)."""
    return torch.mv(a, v) if a.ndim == 2 else torch.matmul(a, v.unsqueeze(-1)).squeeze(-1)


@contextlib.contextmanager
def column_form():
    """Run matbal's kernels with the column-form mat-vec (the peer of the row form)."""
    saved = _engine.matvec, estimators.matvec
    _engine.matvec = estimators.matvec = column_matvec
    try:
        yield
    finally:
        _engine.matvec, estimators.matvec = saved


def _with_column_form(fn):
    def run():
        with column_form():
            return fn()
    return run


def _check_agree(res: dict, forms: tuple[str, ...]) -> None:
    """The forms of one work item must give the same numbers (float32 rounding)."""
    def flat(r):
        if isinstance(r, list):
            return torch.stack([flat(e) for e in r])
        if isinstance(r, torch.Tensor):
            return r
        return torch.stack([r.spectral_upper, r.frobenius_norm], -1)  # QuickStats: (..., 2)
    for what in {w for w, _ in res}:
        ref = flat(res[(what, forms[1])]["result"])
        for form in forms:
            got = flat(res[(what, form)]["result"])
            if float((got - ref).abs().max()) > 1e-4 * float(ref.abs().max()):
                raise AssertionError(f"{what}: {form} disagrees with the row form")


def batched_matvec(quick: bool = True, shapes=None) -> list[dict]:
    """Mat-vec forms on a ``(B, m, n)`` stack, then ``quick_stats`` and ``racs`` on the stack.
    Raises if the three forms disagree (beyond float32 rounding) on any result."""
    if shapes is None:
        shapes = [(16, 128, 512), (4, 512, 2048)] if quick else [(16, 128, 512), (8, 256, 1024),
                                                                 (4, 512, 2048), (4, 1024, 4096)]
    rows = []
    for b, m, n in shapes:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(b, m, n, generator=gen)
        v = torch.randn(b, n, generator=gen)
        x = syn.gaussian(m, n, seed=1, batch=(b,))
        work = {
            "a·v": (lambda: column_matvec(a, v), lambda: _matvec.matvec(a, v),
                    lambda: torch.stack([torch.mv(a[i], v[i]) for i in range(b)])),
            "quick_stats": (_with_column_form(lambda: matbal.quick_stats(x)),
                            lambda: matbal.quick_stats(x),
                            lambda: [matbal.quick_stats(x[i]) for i in range(b)]),
            "racs p=2": (_with_column_form(lambda: matbal.racs(x).matrix),
                         lambda: matbal.racs(x).matrix,
                         lambda: [matbal.racs(x[i]).matrix for i in range(b)]),
        }
        forms = ("column form", "row form (matbal)", "loop of single matrices")
        peers = {(what, form): fn for what, fns in work.items() for form, fn in zip(forms, fns)}
        res = C.interleaved(peers, repeats=5 if quick else 7, warmup=1)
        _check_agree(res, forms)
        for (what, form), r in res.items():
            rows.append({"stack": f"{b}×{m}×{n}", "work": what, "form": form,
                         "median_s": r["median"], "min_s": r["min"],
                         "x_row_form": r["median"] / res[(what, forms[1])]["median"]})
    C.print_table("Batched mat-vec on a stack of same-shape matrices: column form `a @ v[..., None]` "
                  "vs row form `(vᵀaᵀ)ᵀ` (matbal) vs a loop of torch.mv", rows)
    return rows


def main(quick: bool = True, full: bool = False) -> list[dict]:
    m, n = (256, 1024) if quick else (1024, 4096)
    mats = {"gaussian": syn.gaussian(m, n, seed=0),
            "geometric κ=1e3": syn.prescribed_spectrum(m, n, syn.geometric_spectrum(m, kappa=1e3), seed=0)}
    rows = []
    for mname, x in mats.items():
        peers = {
            "spectrum_report (exact, f64 SVD)": lambda: matbal.spectrum_report(x).spectral_norm,
            "quick_stats (10 power, 4 upper) lower": lambda: matbal.quick_stats(x),
        }
        for it in (5, 10, 20):
            peers[f"spectral_norm_estimate lower iters={it}"] = (lambda it=it: matbal.spectral_norm_estimate(x, iters=it, kind="lower").value)
        for it in (2, 3, 4):
            peers[f"spectral_norm_estimate upper iters={it}"] = (lambda it=it: matbal.spectral_norm_estimate(x, iters=it, kind="upper").value)
        res = C.interleaved(peers, repeats=3, warmup=1)
        exact = float(res["spectrum_report (exact, f64 SVD)"]["result"])
        base = res["spectrum_report (exact, f64 SVD)"]["median"]
        for k, v in res.items():
            if k.startswith("quick_stats"):
                q = v["result"]
                vals = [("quick_stats lower (power 10)", float(q.spectral_lower)),
                        ("quick_stats upper (Schatten-16)", float(q.spectral_upper))]
            else:
                vals = [(k, float(v["result"]))]
            for name, val in vals:
                rows.append({"matrix": f"{mname} {m}×{n}", "method": name, "median_s": v["median"],
                             "x_exact_time": v["median"] / base, "rel_err_sigma1": val / exact - 1})
    C.print_table("Spectral norm: exact vs estimators (time ratio to spectrum_report, signed relative error)", rows)
    return rows + batched_matvec(quick)


if __name__ == "__main__":
    main(quick=True)
