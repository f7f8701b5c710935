"""--probe-every / --record-every: instruments switched on by flags write what they say and leave
the training trajectory bit-identical."""
import pytest
import torch

from matbal.instruments import MatrixStore, read_rows
from matbal.train import TrainConfig, train
from test_train_loop import tiny


def test_probe_and_record_flags(tmp_path):
    plain = train(tiny(tmp_path, "plain", steps=12))
    cfg = tiny(tmp_path, "probed", steps=12, probe_every=4, probe_exact_every=8,
               record_every=6, record_kinds="grad,update")
    probed = train(cfg)
    for p, q in zip(plain.model.parameters(), probed.model.parameters()):
        assert torch.equal(p, q)  # observing does not perturb
    rows = read_rows(probed.run_dir / "probes.jsonl")
    steps = {r["step"] for r in rows}
    assert steps == {1, 4, 8, 12}
    exact = {r["step"] for r in rows if r["metric"] == "x_min"}
    assert exact == {1, 8}
    assert {r["kind"] for r in rows} >= {"grad", "update"}
    with MatrixStore(probed.run_dir / "store", mode="r") as store:
        recs = store.query(run="probed")
        assert {r.step for r in recs} == {1, 6, 12}
        assert {r.kind for r in recs} == {"grad", "update"}
        assert all(torch.isfinite(store.get(r)).all() for r in recs)


def test_bad_record_kinds_is_refused(tmp_path):
    with pytest.raises(ValueError, match="record_kinds"):
        tiny(tmp_path, "bad", record_kinds="grad,weights")
    with pytest.raises(ValueError, match="probe_every"):
        TrainConfig(probe_every=-1)


def test_rerun_into_a_recorded_run_dir_is_refused(tmp_path):
    train(tiny(tmp_path, "r", steps=4, record_every=2))
    with pytest.raises(FileExistsError, match="already holds"):
        train(tiny(tmp_path, "r", steps=4, record_every=2))


def test_resume_keeps_probe_rows_without_duplicates(tmp_path):
    full = train(tiny(tmp_path, "full", steps=10, probe_every=2))
    cfg = tiny(tmp_path, "cut", steps=10, probe_every=2, ckpt_every=4)
    train(cfg, stop_at=6)  # interrupted after step 6; last checkpoint at step 6
    train(tiny(tmp_path, "cut", steps=10, probe_every=2, ckpt_every=4, resume="auto"))
    key = lambda r: (r["step"], r["layer"], r["kind"], r["metric"])  # noqa: E731
    cut = read_rows(tmp_path / "cut" / "probes.jsonl")
    ref = read_rows(full.run_dir / "probes.jsonl")
    assert len({key(r) for r in cut}) == len(cut)  # no duplicated row
    assert sorted(map(key, cut)) == sorted(map(key, ref))
