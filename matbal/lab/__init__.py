"""The lab: what experiments and paper figures share (results I/O, figure style, claim table).

- :mod:`.results` — ``save_results(name, rows, config)`` → ``experiments/results/<name>.{csv,json}``
  with config, code version, library versions and date; ``load_results(name)``.
- :mod:`.figures` — ``figure``, ``savefig(fig, name)`` (PDF + PNG ≤ 300 KB into ``paper_figs/out``),
  shared colours for balancings and schedules.
- :mod:`.claims` — the claim registry (docs/math.md §4), ``verdict(...)`` records, CLAIMS.md.
- :mod:`.stats` — ``aggregate``, ``asymptotic_rate``, ``loglog_slope``, ``seed_band``,
  ``fit_trend`` (a line through medians with a bootstrap interval and where it reaches a level).
- :mod:`.arm_stats` — ``compare_arms`` (paired / Welch t, SE of the mean difference, t or
  bootstrap interval), ``VerdictRule`` + ``apply_rule`` (a rule written before the runs).
- :mod:`.lr_protocol` — ``lr_grid``, ``sweep_lr`` (×2 grid, ≥ 2 seeds, extended until the optimum
  is interior), ``choose_lr``, ``plot_lr_sweep``.
- :mod:`.matrices` — test matrices beyond :mod:`matbal.synthetic` (``scaled_core``, ``coherent_rows``).
- :mod:`.cli` — the shared ``--quick`` / ``--results-dir`` command line.

Layer 6 helpers: they may import anything in matbal; nothing in matbal imports them.
"""
from .arm_stats import Comparison, VerdictRule, apply_rule, compare_arms, format_comparison
from .claims import CLAIMS, Claim, claim_ids_in_science, render_claims_md, verdict, write_claims_md
from .cli import QUICK_RESULTS_DIR, experiment_cli, figure_cli
from .figures import (
    BALANCING_COLORS,
    BALANCING_ORDER,
    SCHEDULE_COLORS,
    SCHEDULE_LABELS,
    apply_style,
    figure,
    figures_dir,
    label_panels,
    savefig,
)
from .matrices import coherent_rows, scaled_core
from .results import REPO_ROOT, Results, list_results, load_results, provenance, results_dir, save_results
from .lr_protocol import LrChoice, choose_lr, lr_grid, plot_lr_sweep, sweep_lr
from .stats import aggregate, asymptotic_rate, fit_trend, geomean, loglog_slope, seed_band

__all__ = [
    "save_results", "load_results", "list_results", "results_dir", "provenance", "Results",
    "REPO_ROOT", "figure", "savefig", "apply_style", "figures_dir", "label_panels",
    "BALANCING_COLORS", "BALANCING_ORDER", "SCHEDULE_COLORS", "SCHEDULE_LABELS", "CLAIMS", "Claim",
    "verdict", "claim_ids_in_science", "render_claims_md", "write_claims_md", "experiment_cli",
    "figure_cli", "QUICK_RESULTS_DIR", "aggregate", "asymptotic_rate", "geomean", "loglog_slope", "seed_band",
    "fit_trend",
    "scaled_core", "coherent_rows", "compare_arms", "Comparison", "VerdictRule", "apply_rule",
    "format_comparison", "lr_grid", "sweep_lr", "choose_lr", "LrChoice", "plot_lr_sweep",
]
