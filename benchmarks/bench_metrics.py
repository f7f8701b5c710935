"""Spectral metrics: exact (``spectrum_report``, one float64 SVD) vs the estimators (``quick_stats``,
``spectral_norm_estimate`` lower/upper): time and relative error of ‖X‖₂."""
from __future__ import annotations

import matbal
import matbal.synthetic as syn
from benchmarks import _common as C


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
    return rows


if __name__ == "__main__":
    main(quick=True)
