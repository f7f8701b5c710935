"""The claim table: which claim each experiment settles, and CLAIMS.md rendered from stored results.

Each claim of ``docs/math.md`` §4 is a :class:`Claim` in :data:`CLAIMS` with the experiment that
settles it and the figure that shows it. An experiment stores, in its results JSON, one record per
claim it settles — built by :func:`verdict` — with the measured numbers in words and a verdict:

- ``"holds"`` — every pre-registered criterion of the experiment is met;
- ``"fails"`` — a criterion is violated (reported as failing, never softened);
- ``"holds under conditions"`` — true on part of the tested range; ``conditions`` says which part;
- ``"pending"`` — not measured yet.

The training claims (EQ-5, REG-2, REG-3, RM-1, SC-1) are settled by experiments that train the char
GPT of :mod:`matbal.train` (``experiments/eq5_*.py``, ``reg2_*``, ``reg3_*``, ``rm1_*``,
``sc1_*``; shared steps in :mod:`matbal.lab.training`); their measured column states the scale.

:func:`render_claims_md` joins the registry with the stored records into CLAIMS.md (nothing typed
by hand, so the table cannot drift from the results); ``python experiments/build_claims.py``
writes it.

>>> verdict("MU-1", "band [0.682, 1.134]", "holds")["verdict"]
'holds'
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .results import REPO_ROOT, Results, list_results, load_results

__all__ = ["Claim", "CLAIMS", "VERDICTS", "verdict", "claim_ids_in_science", "render_claims_md",
           "PENDING_TRAINING"]

VERDICTS = ("holds", "fails", "holds under conditions", "pending")
PENDING_TRAINING = "pending: training experiment (issue Science, part 2)"


@dataclass(frozen=True)
class Claim:
    """One row of the science brief's claim table, with where it is settled."""

    id: str
    claim: str
    source: str
    experiment: str | None = None  # experiments/<experiment>.py; None: not a kernel-level claim
    figure: str | None = None  # paper_figs/out/<figure>.png
    pending: str | None = None  # why no number yet


CLAIMS: tuple[Claim, ...] = (
    Claim("EQ-1", "R (and RC) lowers κ and raises sr and x_min when ill-conditioning comes from row "
          "scale mismatch; C does not help row mismatch", "MuonEq", "eq1_row_mismatch",
          "fig_eq1_row_mismatch"),
    Claim("EQ-2", "finite-step NS error is governed by x_min = 1/(κ√sr); Muon NS5 reaches ≥0.5 only "
          "for x ≳ 1e-3", "MuonEq", "eq2_xmin_governs", "fig_eq2_xmin"),
    Claim("EQ-3", "R(DX) = R(X); MuonEq-R is invariant to per-neuron momentum rescaling, Muon is not "
          "(kernel part)", "MuonEq", "eq3_invariance", None),
    Claim("EQ-4", "R approximates polar (\"zeroth-order whitening\") only when rows are nearly "
          "orthogonal; error grows toward square shapes", "MuonEq, RMNP", "eq4_row_vs_polar",
          "fig_eq4_row_vs_polar"),
    Claim("EQ-5", "MuonEq-R trains faster / to lower validation loss than Muon, which beats AdamW "
          "(1B: 2.555 / 2.570 / 2.689)", "MuonEq", "eq5_muoneq_gpt", "fig_eq5_loss_curves"),
    Claim("EQ-6", "balancing does not help when ill-conditioning is intrinsic low rank",
          "(to find out)", "eq6_intrinsic_low_rank", "fig_balance_limits"),
    Claim("MU-1", "Muon NS5 maps [1e-2, 1] into ≈[0.68, 1.13] and never converges", "Muon",
          "mu1_muon_band", "fig_ns_bands"),
    Claim("MU-2", "exact polar update RMS·√max(m,n) = 1; NS5 gives less, depending on x_min",
          "Moonlight", "mu2_update_rms", "fig_mu2_update_rms"),
    Claim("NM-1", "orthogonalized updates of tall matrices have non-uniform row norms; wide "
          "exact-polar rows are unit", "NorMuon", "nm1_row_norms", None),
    Claim("PE-1", "Polar Express is minimax-optimal per step count; 5/6 steps map [1e-3, 1] into "
          "[0.84, 1.12] / [0.993, 1.001]", "Polar Express", "pe1_polar_express_band",
          "fig_ns_bands"),
    Claim("PE-2", "PE reaches a given accuracy in about half the steps of quintic Padé",
          "Polar Express", "pe2_steps_to_accuracy", "fig_pe2_steps"),
    Claim("CA-1", "closed-form optimal cubic on [ℓ, u] (CANS)", "CANS", "ca1_cans_cubic", None),
    Claim("SK-1", "RACS-2 / SinkGD converge to rows √n, columns √m at rate σ₂(P̃)²; Ruiz rate 1/2",
          "SinkGD, Knight, Ruiz", "sk1_sinkhorn_rate", "fig_sinkhorn_rate"),
    Claim("SK-2", "a zero row/column or a pattern without total support stalls Sinkhorn (sublinear)",
          "Sinkhorn–Knopp theory", "sk2_sinkhorn_stall", "fig_sinkhorn_rate"),
    Claim("REG-1", "RACS lowers κ \"less drastically\" than polar: 1 < κ(RACS(M)) ≪ κ(M)", "REG",
          "reg1_racs_kappa", "fig_equilibration_gallery"),
    Claim("REG-2", "the REG update direction is closer to AdamW's than Muon's (cosine on recorded "
          "momenta)", "REG", "reg2_adamw_cosine", "fig_reg2_adamw_cosine"),
    Claim("REG-3", "fine-tuning an AdamW-pretrained model: REG keeps AdamW-like behaviour where Muon "
          "degrades", "REG", "reg3_minilm_finetune", "fig_reg3_minilm"),
    Claim("TM-1", "AOL preconditioning + 4 Newton–Schulz steps ≈ plain NS5 at lower cost (AOL "
          "changes the target: polar(AOL·X) ≠ polar(X))", "Turbo-Muon, arXiv 2512.04632",
          "tm1_turbo_muon", None),
    Claim("DS-1", "a schedule designed for the measured x_min of recorded momenta reaches the fixed "
          "Muon schedule's worst-case error in fewer steps (steps saved at equal worst-case error)",
          "Polar Express arXiv 2505.16932, CANS arXiv 2506.10935", "ds1_designed_schedules",
          "fig_ds1_designed_schedules"),
    Claim("RM-1", "row normalization ≈ orthogonalization for transformer momenta", "RMNP",
          "rm1_row_vs_polar_momenta", "fig_rm1_row_vs_polar"),
    Claim("SC-1", "Muon momentum spectra follow power laws in model size; late layers' fall steeply "
          "enough to enter NS5's failure regime (x_min < x₀.₅) at scale",
          "Spectral Scaling Laws of Muon, arXiv 2606.04058", "sc1_width_spectra",
          "fig_sc1_width_spectra"),
    Claim("NL-1", "the best lr of Muon shifts with its Newton–Schulz error: lower precision needs a "
          "smaller lr (NS_q matches SVD up to a constant → 1 in q)",
          "arXiv 2510.19933, arXiv 2601.19156", "nslr1_ns_error_lr", "fig_nslr1_ns_error_lr"),
)

#: Experiments that answer a question of our own (no claim id): rendered as findings.
FINDINGS: tuple[tuple[str, str], ...] = (
    ("balance_limits", "fig_balance_limits"),
    ("reg3_finetune_shift", "fig_reg3_finetune"),
    ("minilm_recorded", "fig_minilm_recorded"),
    ("ns_need_gpt", "fig_ns_need"),
)


def verdict(claim_id: str, measured: str, result: str, *, conditions: str | None = None,
            criterion: str | None = None) -> dict:
    """A claim record for ``save_results(claims=[...])``.

    ``measured``: the numbers, in words; ``result``: one of :data:`VERDICTS`; ``conditions``:
    required for ``"holds under conditions"``; ``criterion``: the pre-registered test applied.
    """
    if result not in VERDICTS:
        raise ValueError(f"result must be one of {list(VERDICTS)}, got {result!r}")
    if result == "holds under conditions" and not conditions:
        raise ValueError("a 'holds under conditions' verdict needs conditions=")
    if claim_id not in {c.id for c in CLAIMS}:
        raise ValueError(f"unknown claim id {claim_id!r}")
    rec = {"id": claim_id, "measured": measured, "verdict": result}
    if conditions:
        rec["conditions"] = conditions
    if criterion:
        rec["criterion"] = criterion
    return rec


def claim_ids_in_science(text: str) -> list[str]:
    """Claim ids in the claims table (section ``## 4.``) of a markdown text such as
    ``docs/math.md``."""
    m = re.search(r"^##\s*4\..*?$(.*?)(?=^##\s|\Z)", text, re.M | re.S)
    block = m.group(1) if m else text
    return re.findall(r"^\|\s*([A-Z]+-\d+)\s*\|", block, re.M)


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _stored(results_dir) -> dict[str, Results]:
    return {name: load_results(name, results_dir=results_dir) for name in list_results(results_dir)}


def render_claims_md(results_dir: str | os.PathLike | None = None, *,
                     figures_prefix: str = "paper_figs/out") -> str:
    """CLAIMS.md text from :data:`CLAIMS` and the claim records stored in the results directory."""
    stored = _stored(results_dir)
    lines = [
        "# Claims: measured values and verdicts",
        "",
        "Generated by `python experiments/build_claims.py` from the stored results in "
        "`experiments/results/` (do not edit by hand). Each experiment applies a pre-registered "
        "criterion (in its results JSON, `claims[].criterion`); a failing claim is reported as "
        "failing. Definitions: `docs/math.md` §1–2; κ = σ₁/σ_r, sr = ‖X‖_F²/‖X‖₂², "
        "x_min = σ_r/‖X‖_F = 1/(κ√sr); NS5 = 5 Newton–Schulz steps; RACS = the p = 2 "
        "Sinkhorn member (`matbal.racs(p=2)`, converged to rtol 1e-6 unless said).",
        "",
        "| id | claim | source | measured | verdict | reproduce | figure |",
        "|---|---|---|---|---|---|---|",
    ]
    missing = []
    for c in CLAIMS:
        rec = None
        if c.experiment and c.experiment in stored:
            rec = stored[c.experiment].claim(c.id)
        if c.pending:
            measured, verdict_s, cmd = "—", c.pending, "—"
        elif rec is None:
            missing.append(c.id)
            measured, verdict_s = "not yet run", "pending"
            cmd = f"`python experiments/{c.experiment}.py`"
        else:
            measured = rec["measured"]
            verdict_s = f"**{rec['verdict']}**"
            if rec.get("conditions"):
                verdict_s += f": {rec['conditions']}"
            cmd = f"`python experiments/{c.experiment}.py`"
        fig = f"[{c.figure}]({figures_prefix}/{c.figure}.png)" if c.figure and not c.pending else "—"
        lines.append("| " + " | ".join(_cell(v) for v in (c.id, c.claim, c.source, measured,
                                                               verdict_s)) + f" | {cmd} | {fig} |")
    findings = [(name, fig) for name, fig in FINDINGS if name in stored]
    if findings:
        lines += ["", "## Beyond the papers", ""]
        for name, fig in findings:
            s = stored[name].summary
            lines.append(f"**{s.get('question', name)}** (`python experiments/{name}.py`, "
                         f"[{fig}]({figures_prefix}/{fig}.png))")
            lines.append("")
            lines.append(s.get("finding", "(no finding stored)"))
            lines.append("")
    lines += ["", "## Provenance", "",
              "| results | code version | date |", "|---|---|---|"]
    for name in sorted(stored):
        p = stored[name].provenance
        cv = p.get("code_version", {})
        sha = str(cv.get("git_sha", "unknown"))[:10] + (" (dirty)" if cv.get("dirty") else "")
        lines.append(f"| `{name}` | {sha} | {p.get('date', '?')} |")
    if missing:
        lines += ["", f"Not yet run: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def write_claims_md(path: str | os.PathLike | None = None, *,
                    results_dir: str | os.PathLike | None = None) -> Path:
    """Render and write CLAIMS.md (default: the repository root)."""
    out = Path(path) if path else REPO_ROOT / "CLAIMS.md"
    out.write_text(render_claims_md(results_dir))
    return out


def claim_ids() -> list[str]:
    return [c.id for c in CLAIMS]


def experiments_for(ids: Iterable[str]) -> list[str]:
    """Distinct experiment names that settle the given claim ids."""
    ids = set(ids)
    return list(dict.fromkeys(c.experiment for c in CLAIMS if c.id in ids and c.experiment))
