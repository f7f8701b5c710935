"""Probes: values equal the kernels on the same tensors, cadence, placement, pure observation."""
import doctest
import math
import warnings

import pytest
import torch
from torch import nn

import matbal.instruments.probes as P
from matbal.instruments.probes import KINDS, MemorySink, Probes, tap_points
from matbal.instruments.probes.base import Instrument
from matbal.kernels.metrics import imbalance, quick_stats, spectrum_report, svdvals
from matbal.kernels.orthogonalize import newton_schulz, predict_singular_values
from matbal.optim import Chain, adamw, build, muon, reg
from matbal.optim.transforms.orthogonalize import ns_dtype_for
from matbal.optim.transforms import (add_decayed_weights, balance, ema_momentum, orthogonalize,
                                     scale_by_shape)




class Capture(Instrument):
    """Keeps a copy of every observed tensor: (step, layer, kind) -> float64 tensor."""

    def __init__(self, **kw):
        super().__init__(kinds=KINDS, layers=None, run="cap", **kw)
        self.seen = {}

    def _observe(self, gi, kind, items):
        for name, t, u, _ in items:
            self.seen[(t, name, kind)] = u.detach().double().clone()


def _net(seed=0):
    torch.manual_seed(seed)
    # hidden matrices 24x12, 20x24, 20x20, 20x20 (the last two share a shape: batched path)
    return nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 20), nn.Tanh(),
                         nn.Linear(20, 20), nn.Tanh(), nn.Linear(20, 20), nn.Linear(20, 3))


def _train(net, opt, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 12, generator=g)
        net(x).square().mean().backward()
        opt.step()
        opt.zero_grad()


def _by_key(rows):
    return {(r["step"], r["layer"], r["kind"], r["metric"]): r["value"] for r in rows}


@pytest.mark.parametrize("mod", [P.placement, P.metrics, P.sinks, P.probes, P.recorder, P])
def test_doctests(mod):
    assert doctest.testmod(mod).failed == 0


def test_tap_points_of_presets():
    net = _net()
    assert tap_points(muon(net).param_groups[0]["chain"]) == {
        "grad": (0, "pre"), "momentum": (0, "post"), "ns_input": (1, "pre"), "update": (2, "post")}
    # REG: no NS; ns_input = balance output; update = RMS-normalized direction (before decay)
    assert tap_points(reg(net).param_groups[0]["chain"]) == {
        "grad": (0, "pre"), "momentum": (0, "post"), "ns_input": (1, "post"), "update": (2, "post")}
    eq = Chain(ema_momentum(0.95), balance("rows"), orthogonalize("muon"), add_decayed_weights(0.1))
    assert tap_points(eq)["ns_input"] == (2, "pre")


def test_probe_values_equal_kernels_on_the_same_tensors():
    net = _net()
    opt = muon(net, lr=0.02)
    cap = Capture().attach(opt)
    probes = Probes(MemorySink(), every=1, exact_every=2).attach(opt)
    alone = Probes(kinds="grad", layers="0.weight", every=1, exact_every=None).attach(opt)
    _train(net, opt, 3)
    got, single = _by_key(probes.sink.rows), _by_key(alone.sink.rows)
    exact_steps = {1, 2}
    n_checked = 0
    for (t, layer, kind), x in cap.seen.items():
        rep = spectrum_report(x)
        # cheap metrics: exact quantities equal the kernels; brackets contain the SVD values
        assert got[(t, layer, kind, "frobenius_norm")] == pytest.approx(
            float(rep.frobenius_norm), rel=1e-5)
        assert got[(t, layer, kind, "rms")] == pytest.approx(
            float(rep.frobenius_norm) / math.sqrt(x.numel()), rel=1e-5)
        imb = imbalance(x)
        for k, v in (("row_cv", imb.row_cv), ("col_cv", imb.col_cv), ("imbalance", imb.residual)):
            assert got[(t, layer, kind, k)] == pytest.approx(float(v), rel=1e-4, abs=1e-6)
        s1, sr = float(rep.spectral_norm), float(rep.stable_rank)
        assert got[(t, layer, kind, "spectral_norm_lower")] <= s1 * (1 + 1e-6)
        assert got[(t, layer, kind, "spectral_norm_upper")] >= s1 * (1 - 1e-6)
        assert got[(t, layer, kind, "stable_rank_lower")] <= sr * (1 + 1e-6)
        assert got[(t, layer, kind, "stable_rank_upper")] >= sr * (1 - 1e-6)
        if layer == "0.weight" and kind == "grad":  # alone in its batch: exactly quick_stats
            q = quick_stats(x.float(), power_iters=10, upper_iters=0)  # the probe defaults
            for k, v in (("spectral_norm_lower", q.spectral_lower),
                         ("spectral_norm_upper", q.spectral_upper),
                         ("stable_rank_upper", q.stable_rank_upper)):
                assert single[(t, layer, kind, k)] == pytest.approx(float(v), rel=1e-6)
        if t in exact_steps:
            for k in ("stable_rank", "condition_number", "x_min", "effective_rank",
                      "spectral_norm"):
                assert got[(t, layer, kind, k)] == pytest.approx(
                    float(getattr(rep, k)), rel=1e-4), (t, layer, kind, k)
            if kind == "ns_input":
                # the probe runs NS with the chain's own settings (muon: ns_dtype="auto")
                out = newton_schulz(x.float(), schedule="muon", steps=5,
                                    dtype=ns_dtype_for("auto", x.device))
                meas = float((1 - svdvals(out)).abs().max())
                pred = predict_singular_values(svdvals(x), schedule="muon", steps=5)
                assert got[(t, layer, kind, "ns_error")] == pytest.approx(meas, abs=1e-4)
                assert got[(t, layer, kind, "ns_error_pred")] == pytest.approx(
                    float((1 - pred).abs().max()), abs=1e-4)
                n_checked += 1
        else:
            assert (t, layer, kind, "stable_rank") not in got
    assert n_checked == 2 * 4
    # Muon: momentum is ns_input (same tensor): identical values
    for (t, layer, kind, m), v in got.items():
        if kind == "momentum" and m != "cos_adamw":
            assert got[(t, layer, "ns_input", m)] == v


def test_cos_adamw_equals_hand_computed_adamw_direction():
    net = _net()
    opt = reg(net, lr=0.01)
    cap = Capture().attach(opt)
    probes = Probes(every=1, exact_every=None, kinds=("update",)).attach(opt)
    _train(net, opt, 4)
    got = _by_key(probes.sink.rows)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for layer in ("0.weight", "4.weight"):
        m = v = 0
        for t in range(1, 5):
            g = cap.seen[(t, layer, "grad")]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            a = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
            u = cap.seen[(t, layer, "update")]
            cos = float((u * a).sum() / (u.norm() * a.norm()))
            assert got[(t, layer, "update", "cos_adamw")] == pytest.approx(cos, abs=1e-5)
    assert {r["kind"] for r in probes.sink.rows} == {"update"}


def test_update_is_direction_before_weight_decay():
    net = _net()
    opt = muon(net, lr=0.02, weight_decay=0.5)
    cap = Capture().attach(opt)
    _train(net, opt, 1)
    x = cap.seen[(1, "2.weight", "ns_input")]
    u = cap.seen[(1, "2.weight", "update")]
    expect = newton_schulz(x.float(), schedule="muon", steps=5,  # shape scale 1 (20x24)
                           dtype=ns_dtype_for("auto", x.device)).double()
    torch.testing.assert_close(u, expect, atol=1e-5, rtol=1e-4)


def test_cadence_layers_and_first_step():
    net = _net()
    opt = muon(net)
    probes = Probes(every=3, exact_every=4, layers=["2.*", "4.weight"]).attach(opt)
    _train(net, opt, 8)
    rows = probes.sink.rows
    assert {r["layer"] for r in rows} == {"2.weight", "4.weight"}
    assert {r["step"] for r in rows if r["metric"] == "rms"} == {1, 3, 6}
    assert {r["step"] for r in rows if r["metric"] == "x_min"} == {1, 4, 8}


def test_probes_are_pure_observers_and_keep_state_layout():
    net_a, net_b = _net(3), _net(3)
    opt_a, opt_b = muon(net_a), muon(net_b)
    chain_repr = repr(opt_b.param_groups[0]["chain"])
    _train(net_a, opt_a, 2)
    _train(net_b, opt_b, 2)
    probes = Probes(every=1, exact_every=1).attach(opt_b)  # mid-run attach
    assert repr(opt_b.param_groups[0]["chain"]) == chain_repr
    _train(net_a, opt_a, 2, seed=5)
    _train(net_b, opt_b, 2, seed=5)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(pa, pb)
    keys = lambda o: sorted(k for st in o.state.values() for k in st)  # noqa: E731
    assert keys(opt_a) == keys(opt_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same chain description: no "different chain" warning
        opt_a.load_state_dict(opt_b.state_dict())
    assert {r["step"] for r in probes.sink.rows} == {3, 4}
    probes.close()
    assert type(opt_b.param_groups[0]["chain"].transforms[0]).__name__ == "EMAMomentum"


def test_two_instruments_detach_independently():
    net = _net()
    opt = muon(net)
    a, b = Probes(every=1).attach(opt), Capture().attach(opt)
    a.detach()
    _train(net, opt, 1)
    assert len(a.sink) == 0 and len(b.seen) > 0
    b.detach()
    assert all(type(t).__name__ != "Instrumented" for t in opt.param_groups[0]["chain"])


def test_reg_gets_hypothetical_ns_numbers_and_adamw_preset_is_observed_whole():
    net = _net()
    opt = reg(net)
    probes = Probes(every=1, exact_every=1, kinds="ns_input").attach(opt)
    _train(net, opt, 1)
    assert {"ns_error", "ns_error_pred"} <= {r["metric"] for r in probes.sink.rows}
    opt = adamw(net)  # no matrix group: every >= 2-D parameter is observed, named from the model
    with pytest.warns(UserWarning, match="momentum"):
        probes = Probes(every=1, kinds=("grad", "momentum", "update")).attach(opt, model=net)
    _train(net, opt, 1)
    layers = {r["layer"] for r in probes.sink.rows}
    assert layers == {n for n, p in net.named_parameters() if p.ndim >= 2}  # no biases
    cos = {round(r["value"], 9) for r in probes.sink.rows if r["metric"] == "cos_adamw"}
    assert cos == {1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default kinds: what the chain has, no warning
        Probes(every=1).attach(adamw(net), model=net).close()


def test_bad_arguments_and_attach_errors():
    with pytest.raises(ValueError, match="kinds"):
        Probes(kinds=("grad", "hessian"))
    with pytest.raises(ValueError, match="every"):
        Probes(every=0)
    with pytest.raises(TypeError, match="sink"):
        Probes(sink=[])
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        Probes().attach(object())
    with pytest.raises(ValueError, match="'momentum'"):
        Probes(kinds=("grad", "momentum")).attach(torch.optim.SGD(_net().parameters(), lr=0.1))
    with pytest.raises(ValueError, match="model= or names="):
        Probes().attach(torch.optim.SGD(_net().parameters(), lr=0.1), model=_net(), names={})
    opt = muon(_net())
    p = Probes().attach(opt)
    with pytest.raises(RuntimeError, match="already attached"):
        p.attach(opt)
    p.close()
    p.close()  # idempotent


def test_training_loop_callback_protocol():
    net = _net()
    opt = muon(net)
    p = Probes(every=1)
    p.on_train_begin(net, opt)
    _train(net, opt, 1)
    p.on_step_end(1, net, opt, {})
    assert p.optimizer is opt and len(p.sink) > 0
    p.on_train_end(None)
    assert p.optimizer is None
    late = Probes(every=1)
    with pytest.warns(UserWarning, match="attached at step 5"):
        late.on_step_end(5, net, opt, {})
    assert late.optimizer is opt
    late.close()


def test_batched_chain_custom_schedule_ns_settings_follow_the_chain():
    net = _net()
    chain = Chain(ema_momentum(0.9), orthogonalize("polar_express", steps=3),
                  scale_by_shape("original"))
    opt = build(net, chain, lr=0.01)
    cap = Capture().attach(opt)
    probes = Probes(every=1, exact_every=1, kinds="ns_input").attach(opt)
    _train(net, opt, 1)
    got = _by_key(probes.sink.rows)
    x = cap.seen[(1, "4.weight", "ns_input")]
    pred = predict_singular_values(svdvals(x), schedule="polar_express", steps=3)
    assert got[(1, "4.weight", "ns_input", "ns_error_pred")] == pytest.approx(
        float((1 - pred).abs().max()), abs=1e-6)


def test_two_sided_brackets_with_upper_iters_and_list_schedule():
    net = _net()
    chain = Chain(ema_momentum(0.9), orthogonalize([(3.4445, -4.7750, 2.0315)] * 4),
                  scale_by_shape("original"))
    opt = build(net, chain, lr=0.01)
    cap = Capture().attach(opt)
    probes = Probes(every=1, exact_every=1, upper_iters=4, kinds=("momentum", "ns_input"))
    probes.attach(opt)
    _train(net, opt, 2)
    got = _by_key(probes.sink.rows)
    for (t, layer, kind), x in cap.seen.items():
        if kind != "momentum":
            continue
        s1 = float(svdvals(x)[0])
        lo, hi = got[(t, layer, kind, "spectral_norm_lower")], got[(t, layer, kind,
                                                                      "spectral_norm_upper")]
        assert lo <= s1 * (1 + 1e-6) and hi >= s1 * (1 - 1e-6) and hi / lo < 1.3
        pred = predict_singular_values(svdvals(x), schedule=[(3.4445, -4.7750, 2.0315)] * 4)
        assert got[(t, layer, "ns_input", "ns_error_pred")] == pytest.approx(
            float((1 - pred).abs().max()), abs=1e-6)
