"""Probes and Recorder on optimizers that are not matbal's: torch.optim.AdamW / SGD through their
step hooks (grad before the step, update = parameter change, param = weights after it)."""
import copy
import warnings

import pytest
import torch
from torch import nn

from matbal.instruments import MatrixStore
from matbal.instruments.probes import MemorySink, Probes, Recorder
from matbal.optim import adamw, muon


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 20), nn.Tanh(),
                         nn.Linear(20, 20), nn.Linear(20, 3))


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 12, generator=g)


def _step(net, opt, x):
    net(x).square().mean().backward()
    opt.step()
    opt.zero_grad()


MATRICES = {"0.weight", "2.weight", "4.weight", "5.weight"}


def _grad_rows(make_opt):
    net = _net()
    opt = make_opt(net)
    probes = Probes(MemorySink(), kinds="grad", every=1, exact_every=1).attach(opt, model=net)
    _step(net, opt, _batch())
    probes.close()
    return {(r["layer"], r["metric"]): r["value"] for r in probes.sink.rows if r["step"] == 1}


def test_grad_metrics_on_torch_adamw_and_sgd_equal_matbal_adamw():
    ref = _grad_rows(lambda net: adamw(net))
    assert {layer for layer, _ in ref} == MATRICES  # >= 2-D only, named from the model
    for make in (lambda net: torch.optim.AdamW(net.parameters(), lr=1e-3),
                 lambda net: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)):
        assert _grad_rows(make) == ref  # same tensors, same computation: identical numbers
    # and the numbers are the gradient's (float64 reference on a fresh copy)
    net = _net()
    net(_batch()).square().mean().backward()
    for name, p in net.named_parameters():
        if name in MATRICES:
            g = p.grad.double()
            s = torch.linalg.svdvals(g)
            assert ref[(name, "frobenius_norm")] == pytest.approx(float(g.norm()), rel=1e-6)
            assert ref[(name, "stable_rank")] == pytest.approx(float((s ** 2).sum() / s[0] ** 2),
                                                               rel=1e-9)


@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
])
def test_recorder_update_is_the_parameter_change_and_param_the_weights(tmp_path, make):
    net = _net()
    opt = make(net.parameters())
    x = _batch()
    seen = {}
    with Recorder(tmp_path, run="r", kinds=("grad", "update", "param"), every=2,
                  layers="[02].weight").attach(opt, model=net):
        for t in range(1, 5):
            net(x).square().mean().backward()
            before = {n: p.detach().clone() for n, p in net.named_parameters()}
            grads = {n: p.grad.clone() for n, p in net.named_parameters()}
            opt.step()
            for n, p in net.named_parameters():
                seen[(t, n)] = (grads[n], p.detach() - before[n], p.detach().clone())
            opt.zero_grad()
    with MatrixStore(tmp_path, mode="r") as st:
        recs = st.query(run="r")
        assert sorted({(r.step, r.layer) for r in recs}) == [
            (s, n) for s in (1, 2, 4) for n in ("0.weight", "2.weight")]
        for r in recs:
            g, d, w = seen[(r.step, r.layer)]
            want = {"grad": g, "update": d, "param": w}[r.kind]
            assert torch.equal(st.get(r), want.reshape(want.shape[0], -1))
    assert seen[(1, "0.weight")][1].abs().sum() > 0  # the step did move the weights


def test_param_kind_on_a_matbal_chain_records_the_weights_after_the_step(tmp_path):
    net = _net()
    opt = muon(net)
    x = _batch()
    with Recorder(tmp_path, run="m", kinds=("param", "update"), every=1).attach(opt, model=net):
        _step(net, opt, x)
    with MatrixStore(tmp_path, mode="r") as st:
        recs = {(r.layer, r.kind): r for r in st.query(run="m")}
        matrices = [n for n, p in net.named_parameters()
                    if n in {name for name, _ in recs}]
        assert matrices and all((n, "update") in recs for n in matrices)  # chain kind too
        for n in matrices:
            p = dict(net.named_parameters())[n]
            assert torch.equal(st.get(recs[(n, "param")]), p.detach().reshape(p.shape[0], -1))


def test_observing_a_foreign_optimizer_does_not_change_its_trajectory():
    def run(attach):
        net = _net()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
        probes = Probes(every=1, exact_every=1).attach(opt, model=net) if attach else None
        for s in range(3):
            _step(net, opt, _batch(s))
        if probes is not None:
            probes.close()
            assert {r["kind"] for r in probes.sink.rows} == {"grad", "update"}
        return [p.detach().clone() for p in net.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(run(True), run(False)))


def test_names_steps_cosine_and_detach_on_foreign_optimizers():
    net = _net()
    # torch keeps the names when the optimizer is built from named_parameters()
    opt = torch.optim.AdamW(net.named_parameters(), lr=1e-3, weight_decay=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probes = Probes(every=1, exact_every=None).attach(opt)
    for s in range(2):
        _step(net, opt, _batch(s))
    rows = probes.sink.rows
    assert {r["layer"] for r in rows} == MATRICES and {r["step"] for r in rows} == {1, 2}
    cos = [r["value"] for r in rows if r["metric"] == "cos_adamw"]
    assert len(cos) == 2 * len(MATRICES)  # plain AdamW: −Δp ∥ the shadow's Adam direction
    assert all(c == pytest.approx(1.0, abs=1e-5) for c in cos)
    probes.detach()
    n = len(rows)
    _step(net, opt, _batch(5))
    assert len(probes.sink.rows) == n  # hooks removed
    # nameless parameters: param<k>, with a warning that says how to name them
    with pytest.warns(UserWarning, match="model=model"):
        p2 = Probes(every=1).attach(torch.optim.SGD(_net().parameters(), lr=0.1))
    p2.close()
    # names= mapping, and layer globs over those names
    net2 = _net()
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.1)
    p3 = Probes(every=1, layers="4.*").attach(opt2, names=dict(net2.named_parameters()))
    _step(net2, opt2, _batch())
    assert {r["layer"] for r in p3.sink.rows} == {"4.weight"}
    assert {r["step"] for r in p3.sink.rows} == {1}  # SGD keeps no count: step() calls
    p3.close()


def test_training_loop_protocol_names_from_the_model():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    probes = Probes(every=1)
    probes.on_train_begin(net, opt)
    _step(net, opt, _batch())
    probes.on_train_end()
    assert {r["layer"] for r in probes.sink.rows} == MATRICES


def test_training_run_records_weights_with_record_kinds_param(tmp_path):
    from matbal.train import TrainConfig, train

    res = train(TrainConfig(model="mlp", optimizer="muon", steps=4, eval_every=4,
                            warmup_steps=1, mlp_hidden=16, quiet=True, threads=1,
                            out_dir=str(tmp_path), run_name="w", record_every=2,
                            record_kinds="param"))
    with MatrixStore(res.run_dir / "store", mode="r") as st:
        recs = st.query(run="w")
        assert {r.kind for r in recs} == {"param"} and {r.step for r in recs} == {1, 2, 4}
        last = {r.layer: st.get(r) for r in recs if r.step == 4}
    from matbal.train.checkpoint import load_checkpoint

    weights = load_checkpoint(res.run_dir / "checkpoint.pt")["model"]  # after step 4
    assert last and all(torch.equal(w, weights[name].reshape(w.shape)) for name, w in last.items())
