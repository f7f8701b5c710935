"""Training loop on CPU: every optimizer learns, runs are bit-identical, resume is exact, run dir."""
import json
import math

import pytest
import torch

from matbal.optim import PRESETS
from matbal.train import TrainConfig, train
from matbal.train.checkpoint import load_checkpoint
from matbal.train.rundir import read_metrics

TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=16, eval_batches=2,
            quiet=True, threads=1, warmup_steps=2, lr=1e-2, cnn_channels=8)


def tiny(tmp_path, name, **kw):
    return TrainConfig(**{**TINY, "out_dir": str(tmp_path), "run_name": name, **kw})


@pytest.mark.parametrize("optimizer", list(PRESETS))
def test_gpt_loss_decreases(tmp_path, optimizer):
    res = train(tiny(tmp_path, optimizer, optimizer=optimizer, steps=20, eval_every=20))
    first = read_metrics(res.run_dir)[0]
    assert first["step"] == 0
    assert res.final_val_loss < first["val_loss"] - 1.0  # from ~ln(166) = 5.1 to < 4


@pytest.mark.parametrize("model,optimizer", [("cnn", "muoneq-rc"), ("cnn", "reg"),
                                             ("mlp", "muon")])
def test_digits_loss_decreases(tmp_path, model, optimizer):
    res = train(tiny(tmp_path, "d", model=model, optimizer=optimizer, steps=20, eval_every=10))
    assert res.final_val_loss < read_metrics(res.run_dir)[0]["val_loss"] - 0.1
    assert res.matrices_per_rank == [20 * 2]  # two hidden matrices (conv weights flattened)


def _states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_reproduces_uninterrupted_run_bit_exactly(tmp_path):
    kw = dict(optimizer="muoneq-r", steps=12, eval_every=4, ckpt_every=4, schedule="wsd")
    full = train(tiny(tmp_path, "full", **kw))
    part = train(tiny(tmp_path, "part", **kw), stop_at=6)
    assert part.step == 6 and not part.completed
    resumed = train(tiny(tmp_path, "part", resume="auto", **kw))
    assert resumed.step == 12 and resumed.completed
    assert _states_equal(full.model.state_dict(), resumed.model.state_dict())
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert all(torch.equal(sa[k][n], sb[k][n]) if torch.is_tensor(sa[k][n])
                   else sa[k][n] == sb[k][n] for n in sa[k])
    ma, mb = read_metrics(full.run_dir), read_metrics(resumed.run_dir)
    key = lambda ms: [(m["step"], m["train_loss"], m["val_loss"], m["lr"]) for m in ms]
    # same records except the extra one written where the first leg stopped (step 6)
    assert key(ma) == [r for r in key(mb) if r[0] != 6]
    assert full.final_val_loss == resumed.final_val_loss
    assert full.matrices_per_rank == resumed.matrices_per_rank == [12 * 8]


def test_resume_refuses_a_different_trajectory(tmp_path):
    train(tiny(tmp_path, "r", optimizer="muon", steps=6, eval_every=6), stop_at=3)
    with pytest.raises(ValueError, match="lr"):
        train(tiny(tmp_path, "r", optimizer="muon", steps=6, eval_every=6, lr=0.05,
                   resume="auto"))


def test_run_directory_contents(tmp_path):
    seen = []

    class Recorder:
        def on_step_end(self, step, model, optimizer, metrics):
            seen.append((step, metrics["train_loss"], "val_loss" in metrics))

    res = train(tiny(tmp_path, "rd", optimizer="adamw", steps=6, eval_every=3, log_every=2,
                     lr=None), callbacks=[Recorder()])
    d = res.run_dir
    names = {p.name for p in d.iterdir()}
    assert {"config.json", "env.json", "metrics.jsonl", "summary.json", "checkpoint.pt"} <= names
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["lr"] is not None and cfg["weight_decay"] == pytest.approx(0.01)  # resolved
    env = json.loads((d / "env.json").read_text())
    assert set(env["code"]) == {"git_sha", "dirty"}
    assert {"torch", "numpy", "python"} <= set(env["libraries"])
    recs = read_metrics(d)
    assert [r["step"] for r in recs] == [0, 2, 3, 4, 6]
    assert set(recs[1]) == {"step", "train_loss", "val_loss", "lr", "tokens_per_s", "step_time_s"}
    assert recs[2]["val_loss"] is not None and recs[1]["val_loss"] is None
    summ = json.loads((d / "summary.json").read_text())
    assert summ["completed"] and summ["final_val_loss"] == res.final_val_loss
    assert [s for s, _, _ in seen] == list(range(1, 7)) and seen[2][2] and not seen[0][2]
    ck = load_checkpoint(d / "checkpoint.pt")  # weights_only=True
    assert ck["step"] == 6 and ck["rng"]["torch"].dtype == torch.uint8
    assert ("tb" in names) == _has_tensorboard()


def _has_tensorboard():
    try:
        import torch.utils.tensorboard  # noqa: F401
        return True
    except ImportError:
        return False


class _Killed(Exception):
    pass


def test_resume_auto_of_a_run_killed_before_its_first_checkpoint_writes_each_step_once(tmp_path):
    kw = dict(model="mlp", optimizer="muon", steps=6, eval_every=3, log_every=1)
    full = train(tiny(tmp_path, "full", **kw))

    class Kill:
        def on_step_end(self, step, model, optimizer, metrics):
            if step == 4:
                raise _Killed

    with pytest.raises(_Killed):
        train(tiny(tmp_path, "killed", **kw), callbacks=[Kill()])
    run_dir = tmp_path / "killed"
    assert not (run_dir / "checkpoint.pt").exists()
    assert [r["step"] for r in read_metrics(run_dir)] == [0, 1, 2, 3, 4]
    resumed = train(tiny(tmp_path, "killed", resume="auto", **kw))
    key = lambda ms: [(m["step"], m["train_loss"], m["val_loss"]) for m in ms]  # noqa: E731
    assert key(read_metrics(run_dir)) == key(read_metrics(full.run_dir))  # one step-0 row
    assert resumed.final_val_loss == full.final_val_loss


def test_resume_auto_of_a_finished_run_is_a_no_op_that_keeps_its_summary(tmp_path, capsys):
    kw = dict(model="mlp", optimizer="muon", steps=4, eval_every=2)
    done = train(tiny(tmp_path, "done", **kw))
    files = {p.name: p.read_bytes() for p in done.run_dir.iterdir() if p.is_file()}
    capsys.readouterr()
    again = train(tiny(tmp_path, "done", resume="auto", **kw))
    assert "already finished (4/4 steps)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in done.run_dir.iterdir() if p.is_file()} == files
    assert again.completed and again.step == 4
    assert again.final_val_loss == done.final_val_loss and math.isfinite(again.final_val_loss)
    assert again.final_train_loss == done.final_train_loss
    assert again.matrices_per_rank == done.matrices_per_rank
    # killed between the final checkpoint and summary.json: the summary is completed from the
    # last metrics row (the final step's train and validation losses)
    (done.run_dir / "summary.json").unlink()
    again = train(tiny(tmp_path, "done", resume="auto", **kw))
    summ = json.loads((done.run_dir / "summary.json").read_text())
    assert summ["final_val_loss"] == done.final_val_loss == again.final_val_loss
    assert summ["final_train_loss"] == done.final_train_loss and summ["completed"]
