"""Synthetic generators: seeded, shaped as asked, with the structure their docstrings promise."""
from __future__ import annotations

import doctest
import functools
import importlib
import math

import numpy as np
import pytest
import torch

import matbal.synthetic as syn
from matbal.kernels.metrics import condition_number, numerical_rank, stable_rank, svdvals

F64 = torch.float64

# every matrix generator with valid structural arguments: name -> f(m, n, **conventions)
GENERATORS = {
    "prescribed_spectrum": lambda m, n, **kw: syn.prescribed_spectrum(
        m, n, syn.geometric_spectrum(max(1, min(m, n)), kappa=10.0), **kw
    ),
    "gaussian": syn.gaussian,
    "scale_mismatch": functools.partial(syn.scale_mismatch, row_range=(0.1, 10.0), col_range=(0.5, 2.0)),
    "low_rank_plus_noise": lambda m, n, **kw: syn.low_rank_plus_noise(m, n, rank=1, noise=0.1, **kw),
    "heavy_rows": lambda m, n, **kw: syn.heavy_rows(m, n, k=1, factor=10.0, **kw),
    "heavy_cols": lambda m, n, **kw: syn.heavy_cols(m, n, k=1, factor=10.0, **kw),
    "heavy_tailed": functools.partial(syn.heavy_tailed, df=2.0),
    **{f"GALLERY[{k}]": v for k, v in syn.GALLERY.items()},
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_seeded_shaped_typed(name):
    f = GENERATORS[name]
    a = f(5, 9, seed=3, batch=(2, 3), dtype=F64)
    assert a.shape == (2, 3, 5, 9) and a.dtype == F64 and torch.isfinite(a).all()
    assert torch.equal(a, f(5, 9, seed=3, batch=(2, 3), dtype=F64))  # reproducible
    assert not torch.equal(a, f(5, 9, seed=4, batch=(2, 3), dtype=F64))  # seed matters
    assert not torch.equal(a[0, 0], a[1, 2])  # batch elements differ
    b = f(9, 5, seed=3, dtype=torch.bfloat16, device="cpu")
    assert b.shape == (9, 5) and b.dtype == torch.bfloat16
    # same seed, other dtype: same matrix up to the rounding of that dtype
    torch.testing.assert_close(f(4, 6, seed=1, dtype=torch.float32).double(), f(4, 6, seed=1, dtype=F64),
                               rtol=1e-6, atol=1e-7)
    assert f(1, 1, seed=0).shape == (1, 1)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_bad_shapes_refused(name):
    f = GENERATORS[name]
    with pytest.raises(ValueError, match="m must be a positive int"):
        f(0, 3)
    with pytest.raises(ValueError, match="n must be a positive int"):
        f(3, -1)
    with pytest.raises(ValueError, match="batch"):
        f(3, 3, batch=(0,))
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        f(3, 3, dtype=torch.int64)
    with pytest.raises(TypeError, match="seed must be an int"):
        f(3, 3, seed=1.5)


@pytest.mark.parametrize("m,n", [(12, 12), (8, 20), (20, 8)])
def test_prescribed_spectrum_exact(m, n):
    s = syn.power_law_spectrum(min(m, n), alpha=1.5, top=4.0)
    x = syn.prescribed_spectrum(m, n, s, seed=2, batch=(2,), dtype=F64)
    torch.testing.assert_close(svdvals(x), s.expand(2, -1), rtol=1e-11, atol=1e-14)
    x32 = syn.prescribed_spectrum(m, n, s, seed=2, dtype=torch.float32)
    torch.testing.assert_close(svdvals(x32), s, rtol=1e-5, atol=1e-6)


def test_spectra():
    s = syn.power_law_spectrum(5, alpha=2.0, top=3.0)
    torch.testing.assert_close(s, 3.0 / torch.arange(1, 6, dtype=F64) ** 2)
    assert torch.equal(syn.power_law_spectrum(4, alpha=0.0), torch.ones(4, dtype=F64))
    x = syn.prescribed_spectrum(50, 50, syn.power_law_spectrum(50, alpha=1.0), seed=0, dtype=F64)
    np.testing.assert_allclose(float(condition_number(x)), 50.0, rtol=1e-9)
    # Marchenko-Pastur: quantiles are deterministic, mean of σ² is 1, edges 1 ± √γ
    for m, n in ((100, 400), (300, 300), (400, 100)):
        q = syn.marchenko_pastur_spectrum(m, n, method="quantiles")
        g = math.sqrt(min(m, n) / max(m, n))
        assert q.shape == (min(m, n),) and bool((q[:-1] >= q[1:]).all())
        np.testing.assert_allclose(float((q**2).mean()), 1.0, rtol=2e-3)
        assert 1 + g - 0.05 < float(q[0]) <= 1 + g and max(1 - g, 0) <= float(q[-1]) < 1 - g + 0.05
        smp = syn.marchenko_pastur_spectrum(m, n, seed=1)
        assert torch.equal(smp, syn.marchenko_pastur_spectrum(m, n, seed=1))
        assert float((smp - q).abs().max()) < 0.08  # the sample follows the law
        torch.testing.assert_close(smp, svdvals(syn.gaussian(m, n, seed=1, dtype=F64) * math.sqrt(n / max(m, n))))


def test_scale_mismatch_row_and_col_spread():
    # geometric spacing: row norms spread ≈ hi/lo as asked (Gaussian rows have norm ≈ 1)
    x = syn.scale_mismatch(16, 2048, row_range=(1e-3, 1.0), spacing="geometric", seed=0, dtype=F64)
    rn = x.norm(dim=1)
    assert float(rn.max() / rn.min()) == pytest.approx(1e3, rel=0.15)
    np.testing.assert_allclose(rn.numpy(), np.logspace(-3, 0, 16), rtol=0.1)
    xc = syn.scale_mismatch(2048, 16, col_range=(1e-2, 1.0), spacing="geometric", seed=0, dtype=F64)
    cn = xc.norm(dim=0) / math.sqrt(2048 / 16)  # entries N(0, 1/n): columns have norm √(m/n)
    np.testing.assert_allclose(cn.numpy(), np.logspace(-2, 0, 16), rtol=0.1)
    # log-uniform: scales inside the range, spread over it
    y = syn.scale_mismatch(400, 1024, row_range=(1e-2, 1e2), seed=1, dtype=F64)
    ln = torch.log10(y.norm(dim=1))
    assert -2.2 < float(ln.min()) < -1.8 and 1.8 < float(ln.max()) < 2.2
    assert abs(float(ln.mean())) < 0.3 and float(ln.std()) == pytest.approx(4 / math.sqrt(12), rel=0.15)
    # row normalization removes a pure row mismatch: κ drops to that of the Gaussian
    g = syn.scale_mismatch(64, 256, row_range=(1e-3, 1.0), seed=2, dtype=F64)
    assert float(condition_number(g)) > 100
    assert float(condition_number(g / g.norm(dim=1, keepdim=True))) < 4
    with pytest.raises(ValueError, match="spacing"):
        syn.scale_mismatch(3, 3, spacing="linear")


def test_structured_generators():
    x = syn.low_rank_plus_noise(40, 60, rank=4, noise=0.0, seed=0, dtype=F64)
    assert int(numerical_rank(x)) == 4
    torch.testing.assert_close(svdvals(x)[:4], torch.ones(4, dtype=F64))
    y = syn.low_rank_plus_noise(40, 60, rank=4, noise=1e-3, seed=0, dtype=F64)
    s = svdvals(y)
    assert float(s[4]) < 2e-3 and float(s[3]) > 0.99 and float(stable_rank(y)) == pytest.approx(4, rel=0.01)
    h = syn.heavy_rows(64, 128, k=3, factor=50.0, seed=0, dtype=F64)
    rn = h.norm(dim=1)
    assert int((rn > 20).sum()) == 3 and float(rn[rn < 20].max()) < 1.5
    assert float(condition_number(h)) > 50 > float(condition_number(h / rn[:, None]))
    c = syn.heavy_cols(128, 64, k=2, factor=50.0, seed=0, dtype=F64)
    cn = c.norm(dim=0)
    assert int((cn > 20 * cn.median()).sum()) == 2
    assert int((syn.heavy_rows(5, 5, k=0, factor=9.0).norm(dim=1) > 3).sum()) == 0
    t = syn.heavy_tailed(200, 300, df=1.0, seed=0, dtype=F64)
    g = syn.heavy_tailed(200, 300, df=1e6, seed=0, dtype=F64)
    kurt = lambda a: float(((a - a.mean()) ** 4).mean() / a.var() ** 2)  # noqa: E731
    assert kurt(t) > 100 and abs(kurt(g) - 3) < 0.2 and torch.isfinite(t).all()
    assert float(g.std()) * math.sqrt(300) == pytest.approx(1.0, rel=0.02)


def test_gallery():
    assert {"gaussian", "row_mismatch", "col_mismatch", "rowcol_mismatch", "low_rank", "heavy_rows",
            "heavy_tailed", "geometric_k1e3"} <= set(syn.GALLERY)
    k = {name: float(condition_number(f(32, 64, seed=0, dtype=F64))) for name, f in syn.GALLERY.items()}
    assert k["geometric_k1e3"] == pytest.approx(1e3, rel=1e-9)
    assert k["gaussian"] < 10 and k["row_mismatch"] > 50 and k["rowcol_mismatch"] > 50


@pytest.mark.parametrize(
    "call,exc,msg",
    [
        (lambda: syn.power_law_spectrum(0, alpha=1.0), ValueError, "r must be"),
        (lambda: syn.power_law_spectrum(3, alpha=-1.0), ValueError, "alpha"),
        (lambda: syn.power_law_spectrum(3, alpha=1.0, top=0.0), ValueError, "top"),
        (lambda: syn.power_law_spectrum(3, alpha="x"), TypeError, "alpha"),
        (lambda: syn.marchenko_pastur_spectrum(0, 3), ValueError, "m must be"),
        (lambda: syn.marchenko_pastur_spectrum(3, 3, method="mean"), ValueError, "method"),
        (lambda: syn.scale_mismatch(3, 3, row_range=(0.0, 1.0)), ValueError, r"row_range\[0\]"),
        (lambda: syn.scale_mismatch(3, 3, col_range=(2.0, 1.0)), ValueError, "col_range must have lo <= hi"),
        (lambda: syn.scale_mismatch(3, 3, row_range=5.0), TypeError, "row_range must be a pair"),
        (lambda: syn.scale_mismatch(3, 3, col_range=(1.0, math.inf)), ValueError, r"col_range\[1\]"),
        (lambda: syn.low_rank_plus_noise(3, 4, rank=4, noise=0.1), ValueError, "rank"),
        (lambda: syn.low_rank_plus_noise(3, 4, rank=0, noise=0.1), ValueError, "rank"),
        (lambda: syn.low_rank_plus_noise(3, 4, rank=1, noise=-0.1), ValueError, "noise"),
        (lambda: syn.heavy_rows(3, 4, k=4, factor=2.0), ValueError, "k must be"),
        (lambda: syn.heavy_cols(3, 4, k=5, factor=2.0), ValueError, "k must be"),
        (lambda: syn.heavy_rows(3, 4, k=1, factor=0.0), ValueError, "factor"),
        (lambda: syn.heavy_cols(3, 4, k=1.0, factor=2.0), TypeError, "k must be an int"),
        (lambda: syn.heavy_tailed(3, 4, df=0.5), ValueError, "df"),
        (lambda: syn.heavy_tailed(3, 4, df=float("nan")), ValueError, "df"),
    ],
)
def test_bad_parameters(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_docstring_examples():
    res = doctest.testmod(importlib.import_module("matbal.synthetic"))
    assert res.failed == 0 and res.attempted > 0
