"""The CPU benchmark parts added for batching run end to end on tiny sizes (a typo or a changed
API fails here, not in a long benchmark run), and their peers agree on the results."""
import math

from benchmarks import bench_metrics, bench_ns


def test_batched_matvec_table_runs_and_forms_agree():
    rows = bench_metrics.batched_matvec(quick=True, shapes=[(3, 8, 24)])
    assert {(r["work"], r["form"]) for r in rows} == {
        (w, f) for w in ("a·v", "quick_stats", "racs p=2")
        for f in ("column form", "row form (matbal)", "loop of single matrices")}
    assert all(r["median_s"] > 0 and math.isfinite(r["x_row_form"]) for r in rows)


def test_batched_ns_rows_run_on_a_tiny_gpt():
    rows = bench_ns._batched_rows(16, 1, quick=True)
    assert len(rows) == 4 and all(r["median_s"] > 0 for r in rows)
    assert rows[0]["model"] == "GPT width 16, 1 layers (4 matrices)"
