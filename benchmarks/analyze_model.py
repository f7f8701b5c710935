"""Time :func:`matbal.analyze_model` on a synthetic BERT-shaped state dict (~22.7 M parameters).

6 encoder layers, hidden 384, FFN 1536, a 30522×384 word embedding, 512×384 position and 2×384
token-type embeddings, a 384×384 pooler: 44 matrices in 5 shape groups (plus 1-D biases, skipped),
float32, N(0, 0.02²) entries. Reports the median and min of ``--repeat`` runs on one CPU thread,
with and without the embeddings (``exclude=["*embeddings*"]``).

``python -m benchmarks.analyze_model [--repeat 3] [--threads 1]``
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import matbal


def bert_like(layers: int = 6, d: int = 384, ffn: int = 1536, vocab: int = 30522, seed: int = 0):
    """The synthetic state dict (BERT-base naming, small sizes)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    sd = {"embeddings.word_embeddings.weight": r(vocab, d),
          "embeddings.position_embeddings.weight": r(512, d),
          "embeddings.token_type_embeddings.weight": r(2, d)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for q in ("query", "key", "value"):
            sd[p + f"attention.self.{q}.weight"] = r(d, d)
            sd[p + f"attention.self.{q}.bias"] = r(d)
        sd[p + "attention.output.dense.weight"] = r(d, d)
        sd[p + "intermediate.dense.weight"] = r(ffn, d)
        sd[p + "intermediate.dense.bias"] = r(ffn)
        sd[p + "output.dense.weight"] = r(d, ffn)
    sd["pooler.dense.weight"] = r(d, d)
    return sd


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sd = bert_like()
    n = sum(t.numel() for t in sd.values())
    for label, kw in (("all matrices", {}), ("without embeddings", {"exclude": ["*embeddings*"]})):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = matbal.analyze_model(sd, **kw)
            times.append(time.perf_counter() - t0)
        print(f"{label}: {len(res.rows)} matrices of {n / 1e6:.1f} M parameters, "
              f"median {statistics.median(times):.2f} s, min {min(times):.2f} s "
              f"({args.threads} thread(s), {args.repeat} runs)")


if __name__ == "__main__":
    main()
