"""Presets through the routing: matrix views in training (Conv1D, fused QKV), calling conventions,
warnings and refusals, names, and the user's tensors left alone."""
import warnings

import pytest
import torch
from torch import nn

from matbal.optim import (PRESETS, Chain, ChainOptimizer, MatrixView, RoutingWarning, muon,
                          routing_table)
from matbal.optim.presets import adamw
from matbal.optim.transforms import add_decayed_weights, ema_momentum, scale_by_shape
from matbal.optim.views import named_blocks, parse_view
from test_routing import D, Conv1D, FusedAttn, GPT2Like, no_warnings

MATRIX_PRESETS = sorted(n for n in PRESETS if n != "adamw")
F64 = dict(ns_dtype=None)  # keep float64 through NS (the presets' default on CPU too)
NS_PRESETS = {"muon", "muoneq-r", "muoneq-c", "muoneq-rc", "normuon"}


def opts(name):
    return F64 if name in NS_PRESETS else {}


def run(opt, params, grads_per_step):
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()


# --- the matrix the chain sees is the one it trains ----------------------------------------------
def test_conv1d_trained_by_muon_equals_muon_on_its_out_in_view():
    torch.manual_seed(0)
    conv = Conv1D(6, 4).double()                      # weight (in=4, out=6)
    lin = nn.Linear(4, 6).double()
    with torch.no_grad():
        lin.weight.copy_(conv.weight.T)
        lin.bias.copy_(conv.bias)
    a = muon(conv, lr=0.05, weight_decay=0.1, head=None, **F64)
    b = muon(lin, lr=0.05, weight_decay=0.1, head=None, **F64)
    assert routing_table(a)["weight"].view.spec == "transpose"
    g = [torch.randn(4, 6, dtype=torch.float64) for _ in range(4)]
    gb = [torch.randn(6, dtype=torch.float64) for _ in range(4)]
    run(a, [conv.weight, conv.bias], zip(g, gb))
    run(b, [lin.weight, lin.bias], zip([x.T.contiguous() for x in g], gb))
    torch.testing.assert_close(conv.weight.T, lin.weight, rtol=0, atol=1e-12)
    torch.testing.assert_close(conv.bias, lin.bias, rtol=0, atol=1e-12)
    assert not torch.allclose(conv.weight.T, torch.zeros_like(lin.weight))


def test_weight_decay_inside_a_chain_sees_the_transposed_view():
    # a decay that is not trailing is applied by the transform, through ctx.param_matrix
    chain = Chain(ema_momentum(0.9), add_decayed_weights(0.3), scale_by_shape("sqrt(m/n)"))
    torch.manual_seed(1)
    w = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)   # Conv1D storage (in, out)
    v = w.detach().T.clone().requires_grad_()                         # the (out, in) matrix
    a = ChainOptimizer([{"params": [w], "views": ["transpose"]}], chain=chain, lr=0.1, matrix=True)
    b = ChainOptimizer([v], chain=chain, lr=0.1, matrix=True)
    g = [torch.randn(4, 6, dtype=torch.float64) for _ in range(3)]
    run(a, [w], [[x] for x in g])
    run(b, [v], [[x.T.contiguous()] for x in g])
    torch.testing.assert_close(w.detach().T, v.detach(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", MATRIX_PRESETS)
def test_split_fused_qkv_equals_three_separate_matrices(name):
    """Every matrix preset on two fused (3d, d) QKV weights with split_qkv=True = the same preset
    on separate Q, K, V projections (momentum, NS, balancing, scaling, post-normalization per
    block; two same-shape fused weights are stacked into one (2, 3, d, d) batch)."""
    torch.manual_seed(2)
    fused = nn.ModuleList([FusedAttn(), FusedAttn()]).double()
    sep = nn.ModuleList([nn.Module(), nn.Module()])
    for layer, f in zip(sep, fused):
        for i, k in enumerate("qkv"):
            setattr(layer, k, nn.Linear(D, D, bias=False).double())
            with torch.no_grad():
                getattr(layer, k).weight.copy_(f.qkv.weight[i * D:(i + 1) * D])
    w0 = [f.qkv.weight.detach().clone() for f in fused]
    kw = dict(lr=0.02, head=None, split_qkv=True, **opts(name))
    a = PRESETS[name](fused, **kw)
    b = PRESETS[name](sep, **kw)
    assert routing_table(a)["1.qkv.weight"].view.spec == "split3"
    grads = [[torch.randn(3 * D, D, dtype=torch.float64) for _ in fused] for _ in range(3)]
    run(a, [f.qkv.weight for f in fused], grads)  # proj gets no gradient: not stepped
    run(b, [getattr(layer, k).weight for layer in sep for k in "qkv"],
        [[blk for g in gs for blk in g.split(D)] for gs in grads])
    for f, layer, w in zip(fused, sep, w0):
        got = torch.cat([layer.q.weight, layer.k.weight, layer.v.weight])
        torch.testing.assert_close(f.qkv.weight, got, rtol=0, atol=1e-10)
        assert (f.qkv.weight - w).abs().max() > 1e-3


@pytest.mark.parametrize("split", [False, True])
def test_split_qkv_switch_against_the_kernel(split):
    """momentum 0: one step is lr·scale·NS5(G) of the fused (3d, d) G, or of each (d, d) block."""
    from matbal import newton_schulz
    torch.manual_seed(3)
    m = FusedAttn().double()
    w0 = m.qkv.weight.detach().clone()
    opt = muon(m, lr=0.1, head=None, split_qkv=split, weight_decay=0.0, momentum=0.0,
               nesterov=False, eps=0.0, **F64)
    g = torch.randn(3 * D, D, dtype=torch.float64)
    m.qkv.weight.grad = g.clone()
    opt.step()
    ns = dict(schedule="muon", steps=5, eps=0.0)
    fused = newton_schulz(g, **ns) * 3 ** 0.5                       # scale √max(1, m/n) = √3
    blocks = torch.cat([newton_schulz(b, **ns) for b in g.split(D)])  # square blocks: scale 1
    step = (w0 - m.qkv.weight.detach()) / 0.1
    torch.testing.assert_close(step, blocks if split else fused, rtol=0, atol=1e-12)
    assert (step - (fused if split else blocks)).abs().max() > 0.05


# --- calling conventions -----------------------------------------------------------------------
def mlp():
    torch.manual_seed(4)
    m = nn.Module()
    m.fc1 = nn.Linear(8, 16)
    m.fc2 = nn.Linear(16, 16)
    m.head = nn.Linear(16, 3)
    return m


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_keeps_names_for_every_convention(name):
    m = mlp()
    names = [n for n, _ in m.named_parameters()]
    for params in (m, m.named_parameters()):
        with no_warnings():
            opt = PRESETS[name](params)
        got = [n for g in opt.param_groups for n in g["names"]]
        assert sorted(got) == sorted(names), (name, got)
        assert [r.name for r in routing_table(opt)] == got
    opt = PRESETS[name](list(m.parameters()))
    assert all(not n.startswith("param") for g in opt.param_groups for n in g["names"])


def test_named_parameters_route_by_name():
    m = mlp()
    with no_warnings():
        by_module = {r.name: r.label for r in routing_table(muon(m))}
        by_name = {r.name: r.label for r in routing_table(muon(m.named_parameters()))}
    assert by_module == by_name == {"fc1.weight": "matrix", "fc1.bias": "adamw",
                                    "fc2.weight": "matrix", "fc2.bias": "adamw",
                                    "head.weight": "adamw", "head.bias": "adamw"}
    emb = nn.Module()
    emb.wte = nn.Embedding(10, 4)
    emb.embed_tokens = nn.Embedding(10, 4)
    emb.body = nn.Linear(4, 4)
    with pytest.warns(RoutingWarning, match="head="):  # no head by name: say so
        t = routing_table(muon(emb.named_parameters()))
    assert t.labels() == {"wte.weight": "adamw", "embed_tokens.weight": "adamw",
                          "body.weight": "matrix", "body.bias": "adamw"}
    with no_warnings():
        t = routing_table(muon(emb.named_parameters(), head=None, exclude="body.weight",
                               include="wte.*"))
    assert t.labels()["wte.weight"] == "matrix" and t.labels()["body.weight"] == "adamw"


def test_plain_tensor_list_routes_by_ndim():
    m = mlp()
    opt = muon(list(m.parameters()))
    assert routing_table(opt).labels() == {f"p{i}": ("matrix", "adamw")[i % 2] for i in range(6)}


def test_param_groups_with_use_muon_flag():
    m = mlp()
    hidden = [m.fc1.weight, m.fc2.weight]
    rest = [m.fc1.bias, m.fc2.bias, *m.head.parameters()]
    groups = [dict(params=hidden, use_muon=True, lr=0.02, weight_decay=0.01),
              dict(params=rest, use_muon=False, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.01,
                   eps=1e-10)]
    opt = muon(groups)
    g0, g1 = opt.param_groups
    assert (g0["label"], g0["lr"], g0["chain"].transforms[-1].weight_decay) == ("matrix", 0.02, 0.01)
    assert (g1["label"], g1["lr"]) == ("adamw", 3e-4)
    adam = g1["chain"].transforms[0]
    assert (adam.betas, adam.eps) == ((0.9, 0.95), 1e-10)
    assert g0["names"] == ["group0.0", "group0.1"]
    named = muon([dict(params=list(m.named_parameters())[:1], matrix=True),
                  dict(params=[m.fc1.bias], label="adamw", names=["fc1.bias"])])
    assert [r.name for r in routing_table(named)] == ["fc1.weight", "fc1.bias"]
    with pytest.raises(ValueError, match="explicit flag"):
        muon([dict(params=hidden)])
    with pytest.raises(ValueError, match="unsupported keys \\['momentum'\\]"):
        muon([dict(params=hidden, use_muon=True, momentum=0.9)])
    with pytest.raises(ValueError, match="unsupported keys \\['betas'\\]"):
        muon([dict(params=hidden, use_muon=True, betas=(0.9, 0.9))])
    with pytest.raises(TypeError, match="use_muon must be True or False"):
        muon([dict(params=hidden, use_muon="yes")])
    with pytest.raises(ValueError, match="needs >= 2-D"):
        muon([dict(params=rest, use_muon=True)])
    with pytest.raises(ValueError, match="param groups carry explicit flags"):
        muon(groups, include="*")
    # the adamw preset takes the same groups; flags are accepted and ignored
    a = adamw(groups)
    assert [g["label"] for g in a.param_groups] == ["adamw", "adamw"]
    assert a.param_groups[0]["lr"] == 0.02


def test_param_groups_equal_model_routing():
    """muon(model) and muon(the same split as flagged groups) train identically."""
    ma, mb = mlp().double(), mlp().double()
    a = muon(ma, lr=0.05, adamw_lr=0.01, **F64)
    hidden = ["fc1.weight", "fc2.weight"]
    nb = dict(mb.named_parameters())
    b = muon([dict(params=[(n, nb[n]) for n in hidden], use_muon=True),
              dict(params=[(n, p) for n, p in nb.items() if n not in hidden], use_muon=False,
                   lr=0.01)], lr=0.05, **F64)
    x = torch.randn(32, 8, dtype=torch.float64)
    for _ in range(3):
        for m, opt in ((ma, a), (mb, b)):
            opt.zero_grad()
            m.head(torch.tanh(m.fc2(torch.tanh(m.fc1(x))))).square().mean().backward()
            opt.step()
    for (n, p), q in zip(ma.named_parameters(), mb.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-14, msg=n)


# --- warnings and refusals ---------------------------------------------------------------------
class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(5, 3))
        self.body = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)


@pytest.mark.parametrize("name", MATRIX_PRESETS)
def test_matrix_presets_warn_on_unknown_2d_and_refuse_no_matrix(name):
    with pytest.warns(RoutingWarning, match=r"kernel \(5, 3\) \(Odd\)"):
        PRESETS[name](Odd())
    with no_warnings():
        opt = PRESETS[name](Odd(), include="kernel")
    assert routing_table(opt)["kernel"].label == "matrix"
    with pytest.raises(ValueError, match="no parameter is routed to the matrix chain"):
        PRESETS[name](nn.Sequential(nn.Embedding(4, 3), nn.LayerNorm(3)))
    with pytest.raises(ValueError, match="no parameter is routed"):
        PRESETS[name]([dict(params=[torch.zeros(3, requires_grad=True)], use_muon=False)])


def test_adamw_preset_does_not_warn_and_keeps_names():
    with no_warnings():
        opt = adamw(Odd())
    assert opt.param_groups[0]["names"] == ["kernel", "body.weight", "body.bias", "head.weight",
                                            "head.bias"]


# --- the user's tensors are never mutated by routing --------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_routing_and_steps_leave_user_tensors_alone(name):
    model = GPT2Like().double()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with no_warnings():
        routing_table(model)
        opt = PRESETS[name](model, split_qkv=True, **opts(name))
    assert name == "adamw" or routing_table(opt)["h.0.attn.c_attn.weight"].view.spec == \
        "transpose+split3"
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n          # building an optimizer changes nothing
    grads = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = grads[n].clone()
    opt.step()
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, grads[n]), n      # gradients untouched through every view
        assert p.shape == before[n].shape and p.is_contiguous()


# --- views, blocks, scale_by_shape -------------------------------------------------------------
@pytest.mark.parametrize("spec,shape,seen", [
    ("matrix", (5, 3), (5, 3)), ("matrix", (6, 2, 3, 3), (6, 18)), ("transpose", (4, 6), (6, 4)),
    ("split3", (9, 3), (3, 3, 3)), ("transpose+split3", (3, 9), (3, 3, 3)),
    ("split2", (4, 2, 2), (2, 2, 4))])
def test_views_round_trip_exactly(spec, shape, seen):
    v = parse_view(spec)
    t = torch.randn(shape)
    x = v.matrix(t)
    assert tuple(x.shape) == seen == v.matrix_shape(shape)
    assert torch.equal(v.storage(x.clone(), shape), t)
    assert parse_view(v.spec) == v
    if spec.startswith("transpose"):
        torch.testing.assert_close(x.flatten(0, -2) if x.ndim > 2 else x, t.T)


def test_view_errors():
    with pytest.raises(ValueError, match="unknown matrix view"):
        parse_view("rotate")
    with pytest.raises(ValueError, match="not divisible into 3"):
        MatrixView(blocks=3).check((8, 4), "w")
    with pytest.raises(ValueError, match="needs a 2-D"):
        MatrixView(transpose=True).check((4, 2, 2), "w")
    with pytest.raises(ValueError, match="blocks"):
        MatrixView(blocks=0)
    w = torch.zeros(8, 4, requires_grad=True)
    with pytest.raises(ValueError, match="not divisible"):
        ChainOptimizer([{"params": [w], "views": ["split3"]}], chain=Chain(scale_by_shape("1")),
                       matrix=True)


def test_named_blocks():
    u = torch.randn(3, 2, 2)
    assert [n for n, _ in named_blocks("w", u)] == ["w[q]", "w[k]", "w[v]"]
    (name, b), = named_blocks("w", u[0])
    assert name == "w" and torch.equal(b, u[0])
    assert torch.equal(named_blocks("w", u)[2][1], u[2])
    assert [n for n, _ in named_blocks("w", torch.zeros(2, 2, 2))] == ["w[0]", "w[1]"]


def test_scale_by_shape_accepts_a_callable():
    from matbal.optim.transforms.base import StepContext
    t = scale_by_shape(lambda m, n: m / n)
    ctx = StepContext(params=[], steps=[1, 1], names=["a", "b"], group={}, matrix=True)
    u = [torch.ones(6, 2, dtype=torch.float64), torch.ones(3, 2, 2, dtype=torch.float64)]
    out = t.apply(u, [{}, {}], ctx)
    assert torch.equal(out[0], torch.full((6, 2), 3.0, dtype=torch.float64))
    assert torch.equal(out[1], torch.ones(3, 2, 2, dtype=torch.float64))  # per block (2, 2)
    assert t.factor(4, 2) == 2.0 and "lambda" in repr(t)
    named = scale_by_shape("original")
    assert repr(named) == "ScaleByShape(rule='sqrt(max(1,m/n))')"
    for bad in (lambda m, n: -1.0, lambda m, n: float("nan"), lambda m, n: "2"):
        with pytest.raises(ValueError, match="expected a finite float"):
            scale_by_shape(bad).apply([torch.ones(2, 2)], [{}], ctx)
    with pytest.raises(ValueError, match="rule"):
        scale_by_shape("sqrt(n)")
    # in a preset: muon's shape_rule passes it through
    m = mlp()
    opt = muon(m, shape_rule=lambda m_, n_: 0.5)
    assert opt.param_groups[0]["chain"].transforms[2].factor(16, 8) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fc1.weight.grad = torch.ones_like(m.fc1.weight)
        opt.step()


def test_state_dict_round_trip_with_views():
    import io

    def make():
        torch.manual_seed(5)
        model = GPT2Like().double()
        return model, muon(model, split_qkv=True, lr=0.05, **F64)

    def grads(model, seed):
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)

    ma, a = make()
    for s in range(2):
        grads(ma, s)
        a.step()
    buf = io.BytesIO()
    torch.save({"model": ma.state_dict(), "opt": a.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    g0 = ck["opt"]["param_groups"][0]
    assert dict(zip(g0["names"], g0["views"]))["h.0.attn.c_attn.weight"] == "transpose+split3"
    mb, b = make()
    mb.load_state_dict(ck["model"])
    b.load_state_dict(ck["opt"])
    for m, opt in ((ma, a), (mb, b)):
        grads(m, 7)
        opt.step()
    for (n, p), q in zip(ma.named_parameters(), mb.parameters()):
        assert torch.equal(p, q), n
