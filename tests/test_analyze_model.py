"""``matbal.analyze_model``: every column against float64 numpy SVDs of the optimizers' matrix view,
the rounding-floor flag, equal rows from a module, a state dict and both file formats, batching and
chunking invisible, the user's tensors untouched, bad input refused, and ``matbal weights analyze``."""
import csv
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import matbal
from matbal.analysis import model as model_mod
from matbal.analysis import model_figure
from matbal.cli import main


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv1d(5, 4, 3)             # weight (4, 5, 3): the matrix (4, 15)
        self.fc1 = nn.Linear(12, 10)
        self.fc2 = nn.Linear(12, 10)               # same shape as fc1: stacked in one SVD call
        self.low = nn.Linear(8, 9, bias=False)     # deliberately rank 1 (float32)
        self.head = nn.Linear(10, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            u, v = torch.randn(9, 1, generator=g), torch.randn(1, 8, generator=g)
            self.low.weight.copy_(u @ v)


def np_ref(w: torch.Tensor, steps: int = 5) -> dict:
    """Every column from numpy's float64 SVD of ``w.reshape(w.shape[0], -1)``, written out here."""
    x = w.detach().double().numpy().reshape(w.shape[0], -1)
    s = np.linalg.svd(x, compute_uv=False)
    fro = np.linalg.norm(x)
    eps = float(np.finfo(np.float32 if w.dtype == torch.float32 else np.float64).eps)
    rtol = eps * fro / s[0]
    y = s / (np.sqrt(np.sum(s ** 2)) + 1e-7)  # Frobenius-normalized with Muon's eps
    for _ in range(steps):
        y = y * (3.4445 - 4.7750 * y ** 2 + 2.0315 * y ** 4)
    rows, cols = np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=0)
    p = s / s.sum()
    return {"m": x.shape[0], "n": x.shape[1], "spectral_norm": s[0], "frobenius_norm": fro,
            "stable_rank": fro ** 2 / s[0] ** 2, "effective_rank": float(np.exp(-np.sum(p * np.log(p)))),
            "condition_number": s[0] / s[-1], "x_min": s[-1] / fro,
            "numerical_rank": int(np.sum(s > rtol * s[0])), "rtol": rtol,
            "row_cv": rows.std() / rows.mean(), "col_cv": cols.std() / cols.mean(),
            "ns_error_muon_5": float(np.max(np.abs(1 - y)))}


@pytest.fixture(scope="module")
def net():
    return Net()


@pytest.fixture(scope="module")
def res(net):
    return matbal.analyze_model(net)


def by_name(rows, balancing="none"):
    return {r["name"]: r for r in rows if r["balancing"] == balancing}


def test_columns_match_float64_numpy_svd(net, res):
    rows = by_name(res.rows)
    assert list(rows) == ["conv.weight", "fc1.weight", "fc2.weight", "low.weight", "head.weight"]
    assert set(res.skipped) == {"conv.bias", "fc1.bias", "fc2.bias", "head.bias"}
    for name, p in net.named_parameters():
        if p.ndim < 2:
            continue
        ref, got = np_ref(p), rows[name]
        assert (got["m"], got["n"]) == (ref["m"], ref["n"])
        assert got["numerical_rank"] == ref["numerical_rank"], name
        for col in ("spectral_norm", "frobenius_norm", "stable_rank", "effective_rank", "rtol",
                    "ns_error_muon_5"):
            assert got[col] == pytest.approx(ref[col], rel=1e-9), (name, col)
        for col in ("row_cv", "col_cv"):  # accumulated in float32 for float32 weights
            assert got[col] == pytest.approx(ref[col], rel=1e-5), (name, col)
        if name != "low.weight":  # well conditioned: σ_r is data, exact to float64 resolution
            assert got["condition_number"] == pytest.approx(ref["condition_number"], rel=1e-9)
            assert got["x_min"] == pytest.approx(ref["x_min"], rel=1e-9)


def test_conv_is_one_matrix_not_a_batch(net, res):
    row = by_name(res.rows)["conv.weight"]
    assert (row["shape"], row["m"], row["n"]) == ("4x5x3", 4, 15)
    s = np.linalg.svd(net.conv.weight.detach().double().numpy().reshape(4, 15), compute_uv=False)
    np.testing.assert_allclose(res.spectra["conv.weight"], s, rtol=1e-12)
    assert res.spectra["conv.weight"].shape == (4,)  # not 4 spectra of 5×3 matrices


def test_ns_error_equals_measured_newton_schulz(net, res):
    for name, p in net.named_parameters():
        if p.ndim < 2:
            continue
        x = p.detach().double().reshape(p.shape[0], -1)
        measured = float((1 - torch.linalg.svdvals(matbal.newton_schulz(x, steps=5))).abs().max())
        assert by_name(res.rows)[name]["ns_error_muon_5"] == pytest.approx(measured, abs=1e-9)


def test_rounding_floor_flag(res):
    rows = by_name(res.rows)
    low = rows["low.weight"]
    assert low["at_floor"] is True and low["numerical_rank"] == 1
    assert low["condition_number"] > 1e5 and low["x_min"] < 1e-6  # kept, not hidden
    for name in ("conv.weight", "fc1.weight", "fc2.weight", "head.weight"):
        assert rows[name]["at_floor"] is False
        assert rows[name]["numerical_rank"] == min(rows[name]["m"], rows[name]["n"])
    assert "*" in res.table() and "rounding floor" in res.table()


def test_floor_flag_follows_dtype():
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64, generator=g))
    x = q @ torch.diag(torch.logspace(0, -9, 16, dtype=torch.float64)) @ q.T  # κ = 1e9
    rows = by_name(matbal.analyze_model({"d": x, "f": x.float()}).rows)
    assert rows["d"]["at_floor"] is False and rows["d"]["numerical_rank"] == 16
    assert rows["d"]["condition_number"] == pytest.approx(1e9, rel=1e-4)
    assert rows["f"]["at_floor"] is True  # 1e-9 is below float32's rounding of the entries


def test_zero_matrix_no_nan():
    r = matbal.analyze_model({"z": torch.zeros(3, 5)}).rows[0]
    assert r["stable_rank"] == 0 and r["numerical_rank"] == 0 and r["at_floor"] is True
    assert r["condition_number"] == math.inf and r["x_min"] == 0
    assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())


def test_routing_and_module_columns(res):
    rows = by_name(res.rows)
    assert rows["conv.weight"]["module"] == "Conv1d" and rows["fc1.weight"]["module"] == "Linear"
    assert rows["fc1.weight"]["route"] == "matrix" and rows["head.weight"]["route"] == "adamw"


METRICS = ("m", "n", "shape", "dtype", "numel", "spectral_norm", "stable_rank", "condition_number",
           "x_min", "numerical_rank", "at_floor", "imbalance", "ns_error_muon_5")


def test_module_state_dict_and_files_give_equal_rows(net, res, tmp_path):
    sd = net.state_dict()
    st, pt = tmp_path / "w.safetensors", tmp_path / "ckpt.pt"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    torch.save({"model": sd, "step": 7}, pt)  # a matbal-style checkpoint, loaded weights_only
    from_sd = matbal.analyze_model(sd).rows
    assert by_name(matbal.analyze_model(st).rows) == by_name(from_sd)  # safetensors sorts names
    assert matbal.analyze_model(str(pt)).rows == from_sd
    assert [{k: r[k] for k in METRICS} for r in res.rows] == [{k: r[k] for k in METRICS}
                                                             for r in from_sd]


def test_batched_and_chunked_equal_one_by_one(net, res, monkeypatch):
    alone = {}
    for name, p in net.named_parameters():
        if p.ndim >= 2:
            alone.update(by_name(matbal.analyze_model({name: p}).rows))
    monkeypatch.setattr(model_mod, "CHUNK_BYTES", 1)  # one matrix per SVD call
    chunked = by_name(matbal.analyze_model(net.state_dict()).rows)
    for name, row in by_name(res.rows).items():
        for col in METRICS:
            want = row[col] if isinstance(row[col], (str, bool)) else pytest.approx(row[col], rel=1e-12)
            assert alone[name][col] == want and chunked[name][col] == want, (name, col)


def test_balancings_rows_match_reference(net):
    out = matbal.analyze_model(net, balancings=("none", "R", "RC", "RACS"), include=["fc1.*"])
    assert [(r["name"], r["balancing"]) for r in out.rows] == [
        ("fc1.weight", b) for b in ("none", "R", "RC", "RACS")]
    w = net.fc1.weight.detach()
    ref = np_ref(w / w.norm(dim=1, keepdim=True))
    row = by_name(out.rows, "R")["fc1.weight"]
    assert row["stable_rank"] == pytest.approx(ref["stable_rank"], rel=1e-6)
    assert row["condition_number"] == pytest.approx(ref["condition_number"], rel=1e-6)
    assert row["row_cv"] < 1e-6
    assert by_name(out.rows, "RACS")["fc1.weight"]["imbalance"] < 1e-4


def test_user_tensors_never_mutated(net):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sd = net.state_dict()
    matbal.analyze_model(net, balancings=tuple(matbal.analysis.BALANCINGS))
    matbal.analyze_model(sd, balancings=("R", "RACS"))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]) and torch.equal(sd[k], before[k])


def test_include_exclude_and_tied():
    w = torch.randn(6, 4)
    sd = {"emb.weight": w, "lm_head.weight": w, "blk.fc.weight": torch.randn(4, 4), "b": torch.zeros(4)}
    out = matbal.analyze_model(sd)
    assert [r["name"] for r in out.rows] == ["emb.weight", "blk.fc.weight"]
    assert out.skipped["lm_head.weight"] == "tied to emb.weight"
    out = matbal.analyze_model(sd, exclude=["emb.*"])
    assert [r["name"] for r in out.rows] == ["blk.fc.weight"]
    assert out.skipped["emb.weight"] == "excluded"
    out = matbal.analyze_model(sd, include=["*.weight"], exclude=["blk.*"])
    assert [r["name"] for r in out.rows] == ["emb.weight"]


def test_schedules_option():
    x = {"a": torch.randn(8, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)}
    r = matbal.analyze_model(x, schedules=["polar_express", ("cubic", 30)]).rows[0]
    s = torch.linalg.svdvals(x["a"])
    for col, sched, k in (("ns_error_polar_express_5", "polar_express", 5),
                          ("ns_error_cubic_30", "cubic", 30)):
        pred = matbal.predict_singular_values(s, schedule=sched, steps=k)
        assert r[col] == pytest.approx(float((1 - pred).abs().max()), rel=1e-12)


def test_bad_input(tmp_path):
    with pytest.raises(TypeError, match="source"):
        matbal.analyze_model(3)
    with pytest.raises(ValueError, match="balancings"):
        matbal.analyze_model({"a": torch.eye(2)}, balancings=("X",))
    with pytest.raises(TypeError, match="include/exclude"):
        matbal.analyze_model({"a": torch.eye(2)}, exclude="a")
    with pytest.raises(ValueError, match="'bad'"):
        matbal.analyze_model({"bad": torch.tensor([[1.0, float("nan")]])})
    with pytest.raises(FileNotFoundError, match="source"):
        matbal.analyze_model(tmp_path / "missing.pt")
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only"):
        matbal.analyze_model(tmp_path / "x.pt")
    torch.save({"step": 1}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no tensors"):
        matbal.analyze_model(tmp_path / "empty.pt")


class _Payload:  # a pickle that would run code on load: must never be unpickled
    def __reduce__(self):
        return (pytest.fail, ("unpickled!",))


def test_pickle_is_never_loaded(tmp_path):
    torch.save({"w": torch.eye(2), "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only"):
        matbal.analyze_model(tmp_path / "evil.pt")


def test_csv_and_figure(res, tmp_path):
    path = res.to_csv(tmp_path / "a.csv")
    with open(path) as fh:
        back = list(csv.DictReader(fh))
    assert [r["name"] for r in back] == [r["name"] for r in res.rows]
    assert float(back[0]["stable_rank"]) == pytest.approx(res.rows[0]["stable_rank"], rel=1e-12)
    fig = model_figure(res)
    assert len(fig.axes) == 5
    with pytest.raises(ValueError, match="balancing"):
        model_figure(res, balancing="RC")
    only_rc = matbal.analyze_model({"a": torch.eye(3)}, balancings=("RC",))
    assert "a" in only_rc.table() and len(model_figure(only_rc).axes) == 5


def test_cli_writes_csv_png_and_table(net, tmp_path, capsys):
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(st))
    out = tmp_path / "out"
    assert main(["weights", "analyze", str(st), "--out", str(out), "--balance", "none", "RC",
                 "--schedule", "muon", "--schedule", "polar_express:8"]) == 0
    printed = capsys.readouterr().out
    assert "low.weight" in printed and "polar_express_8" in printed
    with open(out / "weights.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and {r["balancing"] for r in rows} == {"none", "RC"}
    assert (out / "weights.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["weights", "analyze", str(tmp_path / "nope.pt"), "--out", str(out)]) == 1
    assert "matbal weights: error" in capsys.readouterr().err
