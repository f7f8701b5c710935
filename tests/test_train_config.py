"""Training config, CLI parsing, schedules, data and models (fast, no training)."""
import json
import math
from pathlib import Path

import pytest
import torch

from matbal.train.config import TrainConfig, parse_config
from matbal.train.cli import main
from matbal.train.data import ArrayBatcher, TokenBatcher, cache_dir, stdlib_corpus
from matbal.train.models import CNN, GPT, MLP
from matbal.train.schedule import lr_multiplier, make_scheduler

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("field,value,words", [
    ("optimizer", "sgdx", ["optimizer", "sgdx"]),
    ("lr", -1.0, ["lr", "-1.0"]),
    ("lr", float("nan"), ["lr", "nan"]),
    ("steps", 0, ["steps", "0"]),
    ("batch_size", -2, ["batch_size", "-2"]),
    ("model", "resnet", ["model", "resnet"]),
    ("schedule", "linear", ["schedule", "linear"]),
    ("warmup_steps", 900, ["warmup_steps", "900"]),
    ("optimizer_kwargs", "{bad", ["optimizer_kwargs"]),
    ("n_head", 5, ["n_embd", "n_head"]),
    ("dropout", 1.0, ["dropout"]),
])
def test_bad_values_name_the_field(field, value, words):
    with pytest.raises(ValueError) as e:
        TrainConfig(**{field: value})
    for w in words:
        assert w in str(e.value)


def test_bad_types_name_the_field():
    with pytest.raises(TypeError, match="steps"):
        TrainConfig(steps=2.5)
    with pytest.raises(TypeError, match="quiet"):
        TrainConfig(quiet="yes")


def test_adamw_lr_refused_for_adamw():
    with pytest.raises(ValueError, match="adamw_lr"):
        TrainConfig(optimizer="adamw", adamw_lr=1e-3)


def test_parse_overrides_every_kind_of_field():
    cfg = parse_config(["--model", "cnn", "--lr", "0.01", "--batch_size", "16", "--quiet",
                        "--tie-weights", "false", "--weight-decay", "none", "--optimizer",
                        "muoneq-rc", "--optimizer-kwargs", '{"ns_steps": 3}'])
    assert (cfg.model, cfg.lr, cfg.batch_size, cfg.quiet, cfg.tie_weights) == \
        ("cnn", 0.01, 16, True, False)
    assert cfg.weight_decay is None and cfg.optimizer_kwargs_dict() == {"ns_steps": 3}
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize("argv,word", [
    (["--steps", "0"], "steps"),
    (["--lr", "abc"], "--lr"),
    (["--optimizer", "nope"], "optimizer"),
    (["--bogus", "1"], "--bogus"),
    (["--lr", "-0.1"], "lr"),
])
def test_cli_errors_exit_2_with_the_field(argv, word, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert word in capsys.readouterr().err


def test_schedules():
    f = lr_multiplier("cosine", steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == 1.0 and f(10) == 1.0
    assert f(99) == pytest.approx(0.1) and f(54) == pytest.approx(0.55, abs=0.02)
    g = lr_multiplier("wsd", steps=100, warmup_steps=10, min_lr_ratio=0.0, decay_frac=0.2)
    assert g(50) == 1.0 and g(79) == 1.0 and g(80) == pytest.approx(1 - 1 / 20)
    assert g(99) == pytest.approx(0.0)
    assert lr_multiplier("constant", steps=10, warmup_steps=0)(7) == 1.0


def test_scheduler_scales_every_group():
    from matbal.optim import PRESETS
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = PRESETS["muon"](net, lr=0.02, adamw_lr=0.002)
    sched = make_scheduler(opt, TrainConfig(steps=10, warmup_steps=4))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005, 0.0005])
    for _ in range(4):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.02, 0.002])


def test_corpus_split_and_cache_outside_repo():
    c = stdlib_corpus()
    n = c.train.numel() + c.val.numel()
    assert n > 1_000_000 and c.val.numel() == round(0.1 * n)
    assert 50 < c.vocab_size <= 256 and c.train.dtype == torch.uint8
    assert c.decode(c.encode("def f():")) == "def f():"
    assert REPO not in cache_dir().resolve().parents
    c2 = stdlib_corpus()
    assert torch.equal(c.val, c2.val) and c.vocab == c2.vocab


def test_batcher_ranks_partition_the_global_batch():
    data = torch.arange(1000) % 200
    full = TokenBatcher(data, batch_size=8, block_size=5, seed=3)
    parts = [TokenBatcher(data, batch_size=8, block_size=5, seed=3, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(3):
        x, y = full.next()
        xs = torch.cat([p.next()[0] for p in parts])
        assert torch.equal(x, xs) and torch.equal(x[:, 1:], y[:, :-1])
    sd = full.state_dict()
    a = full.next()[0]
    full.load_state_dict(sd)
    assert torch.equal(full.next()[0], a)
    with pytest.raises(ValueError, match="divisible"):
        ArrayBatcher(torch.zeros(4, 2), torch.zeros(4), batch_size=3, seed=0, world_size=2)


def test_models_shapes_and_routing():
    from matbal.optim import label_params
    gpt = GPT(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=16)
    assert gpt(torch.zeros(3, 8, dtype=torch.long)).shape == (3, 8, 30)
    labels = label_params(gpt)
    assert labels["transformer.h.0.attn.c_attn.weight"] == "matrix"
    assert labels["transformer.wte.weight"] == "adamw" and "lm_head.weight" not in labels
    untied = label_params(GPT(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16,
                              tie_weights=False))
    assert untied["lm_head.weight"] == "adamw"
    x = torch.rand(5, 1, 8, 8)
    assert MLP()(x).shape == CNN()(x).shape == (5, 10)
    cl = label_params(CNN())
    assert cl["conv1.weight"] == cl["conv2.weight"] == "matrix" and cl["head.weight"] == "adamw"
    assert not math.isnan(float(gpt(torch.zeros(1, 4, dtype=torch.long)).sum().detach()))
