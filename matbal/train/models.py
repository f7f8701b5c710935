"""Small models: a character-level GPT (nanoGPT-style) and two digits classifiers (MLP, CNN).

GPT (after Karpathy's nanoGPT, github karpathy/nanoGPT ``model.py``; GPT-2, Radford et al. 2019)
----------------------------------------------------------------------------------------------
Tokens ``idx (B, T)`` → ``x = wte[idx] + wpe[0:T]`` ``(B, T, C)`` → ``n_layer`` pre-norm blocks
``x ← x + Attn(LN(x))``, ``x ← x + MLP(LN(x))`` → ``LN_f`` → ``logits = x W_headᵀ`` ``(B, T, V)``.
Attention is causal multi-head (``n_head`` heads of size ``C/n_head``) via
``F.scaled_dot_product_attention(is_causal=True)``; the MLP is ``C → 4C → C`` with GELU. Init as
nanoGPT: N(0, 0.02) for weights, residual projections N(0, 0.02/√(2·n_layer)), zero biases.
``tie_weights=True`` shares ``lm_head.weight`` with ``wte.weight`` (then the head is trained by
AdamW as an embedding; untied, :func:`matbal.optim.label_params` routes ``lm_head`` to AdamW by
name). Hidden matrices — ``c_attn (3C, C)``, ``c_proj (C, C)``, ``c_fc (4C, C)``,
``mlp.c_proj (C, 4C)`` — go to the matrix chain.

Digits classifiers
------------------
``MLP``: ``(B, 1, 8, 8)`` → flatten 64 → ``hidden`` → ``hidden`` → 10 (ReLU). ``CNN``: conv 3×3
``1→c`` (pad 1), ReLU, conv 3×3 ``c→2c`` (pad 1), ReLU, 2×2 max-pool → ``(B, 2c, 4, 4)`` → linear
``32c → 10``. The conv weights ``(out, in, 3, 3)`` are matrices ``(out, in·9)`` to the optimizers.
The last layer is named ``head`` so it is routed to AdamW.

>>> import torch
>>> from matbal.train.models import GPT
>>> m = GPT(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
>>> m(torch.zeros(2, 16, dtype=torch.long)).shape
torch.Size([2, 16, 50])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPT", "MLP", "CNN", "build_model", "count_params"]


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.dropout = n_head, dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = nn.Sequential()
        self.mlp.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.mlp.gelu = nn.GELU()
        self.mlp.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.mlp.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Character-level GPT (see module docstring). ``forward(idx (B, T)) → logits (B, T, V)``."""

    def __init__(self, *, vocab_size: int, block_size: int, n_layer: int = 2, n_head: int = 4,
                 n_embd: int = 64, dropout: float = 0.0, bias: bool = False,
                 tie_weights: bool = True):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            drop=nn.Dropout(dropout),
            h=nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)),
            ln_f=nn.LayerNorm(n_embd, bias=bias),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class MLP(nn.Module):
    """``(B, 1, 8, 8) → (B, n_classes)``: 64 → hidden → hidden → n_classes."""

    def __init__(self, *, in_features: int = 64, hidden: int = 128, n_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        return self.head(F.relu(self.fc2(x)))


class CNN(nn.Module):
    """``(B, 1, 8, 8) → (B, n_classes)``: two 3×3 convs (c, 2c), 2×2 max-pool, linear head."""

    def __init__(self, *, channels: int = 16, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.head = nn.Linear(2 * channels * 16, n_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


def build_model(cfg, *, vocab_size: int | None = None) -> nn.Module:
    """The model named by ``cfg.model`` (a :class:`~matbal.train.config.TrainConfig`)."""
    if cfg.model == "gpt":
        if vocab_size is None:
            raise ValueError("vocab_size is required for the gpt model")
        return GPT(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                   n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                   tie_weights=cfg.tie_weights)
    if cfg.model == "mlp":
        return MLP(hidden=cfg.mlp_hidden)
    if cfg.model == "cnn":
        return CNN(channels=cfg.cnn_channels)
    raise ValueError(f"model must be one of ['gpt', 'mlp', 'cnn'], got {cfg.model!r}")


def count_params(model: nn.Module) -> int:
    """Number of distinct trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
