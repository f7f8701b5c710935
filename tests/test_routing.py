"""Routing tables, parameter by parameter: which parameters are matrices, the view the chain sees, why."""
import contextlib
import warnings

import pytest
import torch
from torch import nn

from matbal.optim import RoutingWarning, label_params, route, routing_table
from matbal.optim.routing_rules import RULES, Rule, is_hf_conv1d, rule_for
from matbal.train.models import GPT

D = 16


def table(model, **opts):
    """``{name: (label, view spec or None)}`` of ``route(model)``."""
    return {r.name: (r.label, r.view.spec if r.view is not None else None)
            for r in route(model, **opts)}


@contextlib.contextmanager
def no_warnings():
    """Routing warnings become errors inside."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RoutingWarning)
        yield


# --- stand-ins -----------------------------------------------------------------------------------
class Conv1D(nn.Module):
    """A look-alike of transformers' GPT-2 Conv1D: weight stored (in, out) = (nx, nf)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


class GPT2Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.Module()
        self.attn.c_attn = Conv1D(3 * d, d)
        self.attn.c_proj = Conv1D(d, d)
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(4 * d, d)
        self.mlp.c_proj = Conv1D(d, 4 * d)


class GPT2Like(nn.Module):
    def __init__(self, d=D, vocab=50):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.h = nn.ModuleList([GPT2Block(d)])
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight


class HeadFirst(nn.Module):
    def __init__(self, head_name="head"):
        super().__init__()
        setattr(self, head_name, nn.Linear(D, 4))
        self.body = nn.Sequential(nn.Linear(8, D), nn.ReLU(), nn.Linear(D, D))


class FusedAttn(nn.Module):
    def __init__(self, d=D):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d)


# --- tables ------------------------------------------------------------------------------------
def test_transformer_encoder_table():
    layer = nn.TransformerEncoderLayer(D, nhead=2, dim_feedforward=32)
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    with pytest.warns(RoutingWarning, match="head="):
        got = table(enc, split_qkv=True)
    expected = {}
    for i in range(2):
        p = f"layers.{i}."
        expected.update({
            p + "self_attn.in_proj_weight": ("matrix", "split3"),
            p + "self_attn.in_proj_bias": ("adamw", None),
            p + "self_attn.out_proj.weight": ("matrix", "matrix"),
            p + "self_attn.out_proj.bias": ("adamw", None),
            p + "linear1.weight": ("matrix", "matrix"), p + "linear1.bias": ("adamw", None),
            p + "linear2.weight": ("matrix", "matrix"), p + "linear2.bias": ("adamw", None),
            p + "norm1.weight": ("adamw", None), p + "norm1.bias": ("adamw", None),
            p + "norm2.weight": ("adamw", None), p + "norm2.bias": ("adamw", None),
        })
    assert got == expected
    with no_warnings():
        fused = table(enc, head=None)  # default: one matrix as stored
    assert fused == {**expected, **{f"layers.{i}.self_attn.in_proj_weight": ("matrix", "matrix")
                                    for i in range(2)}}
    assert "kept as one matrix" in route(enc, head=None)["layers.0.self_attn.in_proj_weight"].why
    t = route(enc, head=None, split_qkv=True)
    r = t["layers.1.self_attn.in_proj_weight"]
    assert r.view.matrix_shape(r.shape) == (3, D, D) and "split_qkv=True" in r.why
    assert t["layers.0.linear2.weight"].view_text == "(16, 32)"


def test_mha_with_separate_kdim_projections():
    mha = nn.MultiheadAttention(D, 2, kdim=8, vdim=6)
    with no_warnings():
        got = table(mha, head=None)
    assert got == {"q_proj_weight": ("matrix", "matrix"), "k_proj_weight": ("matrix", "matrix"),
                   "v_proj_weight": ("matrix", "matrix"), "in_proj_bias": ("adamw", None),
                   "out_proj.weight": ("matrix", "matrix"), "out_proj.bias": ("adamw", None)}


def test_head_first_model_is_routed_by_name_not_order():
    with no_warnings():
        got = table(HeadFirst())
    assert got == {"head.weight": ("adamw", None), "head.bias": ("adamw", None),
                   "body.0.weight": ("matrix", "matrix"), "body.0.bias": ("adamw", None),
                   "body.2.weight": ("matrix", "matrix"), "body.2.bias": ("adamw", None)}
    assert "named 'head'" in route(HeadFirst())["head.weight"].why


def test_unknown_head_warns_and_asks_for_head():
    model = HeadFirst(head_name="readout")
    with pytest.warns(RoutingWarning, match="head="):
        got = table(model)
    assert got["readout.weight"] == got["body.2.weight"] == ("matrix", "matrix")
    with no_warnings():
        got = table(model, head="readout")
    assert got["readout.weight"] == ("adamw", None) and got["body.2.weight"][0] == "matrix"
    assert "head='readout'" in route(model, head="readout")["readout.weight"].why
    with no_warnings():
        assert table(model, head=None)["readout.weight"][0] == "matrix"
    with pytest.raises(ValueError, match="head='nope'"):
        route(model, head="nope")


def test_head_container_and_sequential_rules():
    vgg_like = nn.Module()
    vgg_like.features = nn.Sequential(nn.Conv2d(3, 4, 3))
    vgg_like.classifier = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with no_warnings():
        got = table(vgg_like)
    assert got["features.0.weight"] == ("matrix", "matrix")
    assert got["classifier.0.weight"] == ("matrix", "matrix")
    assert got["classifier.2.weight"] == ("adamw", None)
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with no_warnings():
        assert label_params(seq) == {"0.weight": "matrix", "0.bias": "adamw",
                                     "2.weight": "adamw", "2.bias": "adamw"}
    resnet_like = nn.Module()
    resnet_like.conv = nn.Conv2d(3, 4, 3)
    resnet_like.fc = nn.Linear(4, 10)
    with no_warnings():
        assert table(resnet_like)["fc.weight"] == ("adamw", None)


def test_tied_embedding_gpt_table():
    gpt = GPT(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=D)
    with no_warnings():
        got = table(gpt)
    expected = {"transformer.wte.weight": ("adamw", None), "transformer.wpe.weight": ("adamw", None),
                "transformer.ln_f.weight": ("adamw", None)}
    for i in range(2):
        p = f"transformer.h.{i}."
        expected.update({p + "ln_1.weight": ("adamw", None), p + "ln_2.weight": ("adamw", None),
                         p + "attn.c_attn.weight": ("matrix", "matrix"),
                         p + "attn.c_proj.weight": ("matrix", "matrix"),
                         p + "mlp.c_fc.weight": ("matrix", "matrix"),
                         p + "mlp.c_proj.weight": ("matrix", "matrix")})
    assert got == expected  # lm_head.weight is wte.weight: listed once, under its first name
    with no_warnings():
        split = table(gpt, split_qkv=True)
    assert split == {**expected, **{f"transformer.h.{i}.attn.c_attn.weight": ("matrix", "split3")
                                    for i in range(2)}}
    assert "embedding" in route(gpt)["transformer.wte.weight"].why
    untied = GPT(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=D, tie_weights=False)
    with no_warnings():
        r = route(untied)["lm_head.weight"]
    assert r.label == "adamw" and "named 'lm_head'" in r.why


def test_tied_head_registered_before_embedding():
    class TiedHeadFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(D, 30, bias=False)
            self.body = nn.Linear(D, D)
            self.emb = nn.Embedding(30, D)
            self.out.weight = self.emb.weight

    with no_warnings():
        t = route(TiedHeadFirst())
    assert t["out.weight"].label == "adamw" and "tied to embedding 'emb'" in t["out.weight"].why
    assert t["body.weight"].label == "matrix" and "emb.weight" not in t.labels()


def test_fused_qkv_table():
    class GQA(nn.Module):  # named like a fused QKV but not (3d, d): one matrix
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(D, 2 * D, bias=False)

    m = nn.Module()
    m.attn = FusedAttn()
    m.gqa = GQA()
    with no_warnings():
        got = table(m, head=None, split_qkv=True)
        assert got == {"attn.qkv.weight": ("matrix", "split3"), "attn.proj.weight": ("matrix", "matrix"),
                       "attn.proj.bias": ("adamw", None), "gqa.qkv.weight": ("matrix", "matrix")}
        assert "not (3d, d)" in route(m, head=None, split_qkv=True)["gqa.qkv.weight"].why
        assert table(m, head=None)["attn.qkv.weight"] == ("matrix", "matrix")
        r = route(m, head=None, split_qkv=True)["attn.qkv.weight"]
        assert r.view_text == "3×(16, 16) qkv split"


def test_conv_table_flattens():
    net = nn.Module()
    net.conv = nn.Conv2d(128, 129, 3)
    net.conv1d = nn.Conv1d(4, 6, 5)
    with no_warnings():
        t = route(net, head=None)
    assert t["conv.weight"].view_text == "(129, 1152) conv flattened"
    assert t["conv1d.weight"].view.matrix_shape(t["conv1d.weight"].shape) == (6, 20)
    assert t["conv.bias"].label == "adamw"


def test_conv1d_stand_in_table():
    model = GPT2Like()
    with no_warnings():
        t = route(model, split_qkv=True)
        assert table(model)["h.0.attn.c_attn.weight"] == ("matrix", "transpose")
    got = {r.name: (r.label, r.view.spec if r.view else None) for r in t}
    assert got == {"wte.weight": ("adamw", None), "h.0.ln_1.weight": ("adamw", None),
                   "h.0.ln_1.bias": ("adamw", None),
                   "h.0.attn.c_attn.weight": ("matrix", "transpose+split3"),
                   "h.0.attn.c_attn.bias": ("adamw", None),
                   "h.0.attn.c_proj.weight": ("matrix", "transpose"),
                   "h.0.attn.c_proj.bias": ("adamw", None),
                   "h.0.mlp.c_fc.weight": ("matrix", "transpose"), "h.0.mlp.c_fc.bias": ("adamw", None),
                   "h.0.mlp.c_proj.weight": ("matrix", "transpose"),
                   "h.0.mlp.c_proj.bias": ("adamw", None)}
    assert t["h.0.mlp.c_fc.weight"].view_text == f"({4 * D}, {D}) Conv1D transposed"
    assert t["h.0.attn.c_attn.weight"].view_text == f"3×({D}, {D}) Conv1D transposed, qkv split"
    assert t["h.0.mlp.c_fc.weight"].shape == (D, 4 * D)  # stored (in, out)


def test_hf_conv1d_rule_by_identity_when_transformers_is_loaded(monkeypatch):
    import types

    class Renamed(nn.Module):  # no look-alike name: only the identity path can match
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 6))

    assert not is_hf_conv1d(Renamed())
    monkeypatch.setitem(__import__("sys").modules, "transformers.pytorch_utils",
                        types.SimpleNamespace(Conv1D=Renamed))
    assert is_hf_conv1d(Renamed()) and rule_for(Renamed(), "weight").name == "hf_conv1d"
    assert is_hf_conv1d(Conv1D(6, 4))
    assert not is_hf_conv1d(nn.Linear(4, 6))


def test_user_rule_goes_first():
    from matbal.optim import MatrixView

    class Proj(nn.Module):  # stores (in, out) like Conv1D, under another name
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 6))

    m = nn.Module()
    m.p = Proj()
    with no_warnings():  # route() reports unknown types in the table; presets warn
        pass_through = route(m)
    assert pass_through["p.w"].label == "adamw" and pass_through["p.w"].unknown
    rule = Rule("proj", lambda mod: isinstance(mod, Proj), ("w",), "matrix", "Proj (in, out)",
                view=MatrixView(transpose=True))
    r = route(m, head=None, rules=[rule])["p.w"]
    assert (r.label, r.view.spec, r.why, r.unknown) == ("matrix", "transpose", "Proj (in, out)",
                                                        False)
    assert [x.name for x in RULES][:2] == ["hf_conv1d", "linear"]
    with pytest.raises(ValueError, match="label"):
        Rule("bad", lambda mod: True, ("w",), "sgd", "")
    with pytest.raises(TypeError, match="Rule"):
        route(m, rules=[("proj",)])


# --- overrides ---------------------------------------------------------------------------------
def test_include_exclude_and_label_fn():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.kernel = nn.Parameter(torch.zeros(5, 3))

    m = nn.Module()
    m.odd = Odd()
    m.fc1 = nn.Linear(3, 5)
    m.fc2 = nn.Linear(5, 5)
    with no_warnings():
        base = table(m, head=None)
        assert base["odd.kernel"] == ("adamw", None)
        t = route(m, head=None, include="odd.*", exclude=["fc2.*"])
    assert t["odd.kernel"].label == "matrix" and t["odd.kernel"].view.spec == "matrix"
    assert "include='odd.*'" in t["odd.kernel"].why
    assert t["fc2.weight"].label == "adamw" and "exclude='fc2.*'" in t["fc2.weight"].why
    assert t["fc2.bias"].label == "adamw" and t["fc1.weight"].label == "matrix"
    # exclude wins over include
    assert route(m, head=None, include="fc1.weight", exclude="fc1.*")["fc1.weight"].label == "adamw"
    seen = []

    def fn(name, p, module):
        seen.append((name, type(module).__name__))
        return "adamw" if name == "fc1.weight" else None

    t = route(m, head=None, label_fn=fn, include="fc1.weight")  # label_fn wins
    assert t["fc1.weight"].label == "adamw" and "label_fn" in t["fc1.weight"].why
    assert ("odd.kernel", "Odd") in seen and ("fc1.weight", "Linear") in seen
    with pytest.raises(ValueError, match="match no parameter"):
        route(m, head=None, include="nothing.*")
    with pytest.raises(ValueError, match="label_fn returned"):
        route(m, head=None, label_fn=lambda *a: "sgd")
    with pytest.raises(ValueError, match="only >= 2-D"):
        route(m, head=None, include="fc1.bias")
    with pytest.raises(TypeError, match="label_fn"):
        route(m, head=None, label_fn="adamw")


def test_routing_table_prints_and_exports():
    model = GPT2Like()
    with no_warnings():
        t = routing_table(model, split_qkv=True)
    text = str(t)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "shape", "label", "matrix", "view", "why"]
    assert len(lines) == 1 + len(t)
    line = next(s for s in lines if s.startswith("h.0.attn.c_attn.weight"))
    assert "transpose" in line.lower() and "qkv split" in line
    rows = t.rows()
    assert rows[0] == {"name": "wte.weight", "shape": (50, D), "label": "adamw",
                       "matrix view": "–", "why": rows[0]["why"]}
    with pytest.raises(TypeError, match="nn.Module or a torch.optim.Optimizer"):
        routing_table([1, 2])
    with pytest.raises(KeyError):
        t["nope"]


def test_routing_table_of_torch_optimizers():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    sgd = torch.optim.SGD([{"params": [m[0].weight]}, {"params": list(m[2].parameters())}], lr=0.1)
    t = routing_table(sgd, model=m)
    assert [(r.name, r.label, r.shape) for r in t] == [
        ("0.weight", "group0", (8, 4)), ("2.weight", "group1", (2, 8)), ("2.bias", "group1", (2,))]
    assert "SGD" in t["0.weight"].why and t["0.weight"].view is None
    assert [r.name for r in routing_table(torch.optim.AdamW(m.parameters()))] == [
        "group0.0", "group0.1", "group0.2", "group0.3"]
    with pytest.raises(TypeError, match="apply to a model"):
        routing_table(sgd, head=None)


def test_head_names_inside_numbered_blocks_are_hidden_layers():
    # BERT-style blocks: encoder.layer.<i>.output.dense / attention.output.dense are hidden matrices
    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(8, 8)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inter = nn.Linear(8, 8)
            self.output = Out()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList([Block(), Block()])
            self.classifier = nn.Linear(8, 3)

    labels = route(Net()).labels()
    assert labels["layer.0.output.dense.weight"] == "matrix"
    assert labels["layer.1.output.dense.weight"] == "matrix"
    assert labels["classifier.weight"] == "adamw"


def test_real_transformers_gpt2_routing_parameter_by_parameter():
    """The real HF GPT-2 (tiny config, random weights): Conv1D weights stored (in, out) are matrices
    seen transposed; the fused c_attn is one (3d, d) matrix; the tied lm_head/wte go to AdamW."""
    tr = pytest.importorskip("transformers")
    cfg = tr.GPT2Config(vocab_size=50, n_positions=16, n_embd=12, n_layer=2, n_head=3)
    model = tr.GPT2LMHeadModel(cfg)
    table = route(model)
    rows = {r.name: r for r in table}
    for i in range(2):
        for mod, (m, n) in {"attn.c_attn": (36, 12), "attn.c_proj": (12, 12),
                            "mlp.c_fc": (48, 12), "mlp.c_proj": (12, 48)}.items():
            r = rows[f"transformer.h.{i}.{mod}.weight"]
            assert r.label == "matrix" and r.view.transpose, (mod, r)
            assert r.view.matrix_shape(r.shape) == (m, n)  # rows = outputs
            assert r.shape == (n, m)                       # stored (in, out)
    assert rows["transformer.wte.weight"].label == "adamw"
    assert rows["transformer.wpe.weight"].label == "adamw"
    assert not any(n.startswith("lm_head") for n in rows)  # tied to wte: listed once
    assert {n for n, r in rows.items() if r.label == "matrix"} == {
        f"transformer.h.{i}.{m}.weight" for i in range(2)
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}


def test_real_transformers_conv1d_trained_by_muon_equals_muon_on_out_in_linear():
    tr = pytest.importorskip("transformers")
    from transformers.pytorch_utils import Conv1D

    from matbal.optim import muon

    torch.manual_seed(0)
    conv = Conv1D(nf=10, nx=6).double()              # weight (6, 10): in=6, out=10
    lin = nn.Linear(6, 10).double()
    with torch.no_grad():
        lin.weight.copy_(conv.weight.T)
        lin.bias.copy_(conv.bias)
    kw = dict(lr=0.05, ns_dtype=torch.float64, head=None)
    a = muon(nn.Sequential(conv), **kw)
    b = muon(nn.Sequential(lin), **kw)
    for step in range(3):
        x = torch.randn(4, 6, dtype=torch.float64)
        for net, opt in ((conv, a), (lin, b)):
            opt.zero_grad()
            (net(x) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(conv.weight.T, lin.weight, rtol=0, atol=1e-12)
