"""The non-finite screen of the optimizer shell reduces each gradient to its plain sum on the CPU:
exact in the cases a sum could get wrong (cancelling infinities, sums that overflow, half types)."""
import pytest
import torch

from matbal.optim.optimizer import _nonfinite


def test_opposite_infinities_in_one_tensor_are_found():
    g = [torch.ones(4), torch.tensor([1.0, float("inf"), -float("inf"), 2.0]), torch.zeros(3)]
    assert _nonfinite(g) == {1}  # inf + (-inf) = NaN, not a finite number


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_finite_entries_whose_sum_overflows_are_not_flagged(dtype):
    big = torch.finfo(dtype).max / 2
    g = [torch.full((1000,), big, dtype=dtype), torch.full((7,), -big, dtype=dtype)]
    assert _nonfinite(g) == set()
    g[0][999] = float("nan")
    assert _nonfinite(g) == {0}


def test_a_single_nan_among_many_tensors():
    g = [torch.randn(64, 64, generator=torch.Generator().manual_seed(i)) for i in range(20)]
    assert _nonfinite(g) == set()
    g[13][5, 7] = float("nan")
    g[2][0, 0] = -float("inf")
    assert _nonfinite(g) == {2, 13}


def _gpt_like(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 8, generator=g, dtype=torch.float64, requires_grad=True),
            torch.randn(8, generator=g, dtype=torch.float64, requires_grad=True)]


@pytest.mark.parametrize("fused", [True, False])
def test_unchecked_skips_the_screen_and_behaves_like_torch_adamw(fused):
    """nonfinite='unchecked' is the opt-out: finite steps equal the screened ones and
    torch.optim.AdamW; a NaN gradient reaches the weights exactly as in torch.optim."""
    from matbal.optim import adamw

    ours, screened, ref = _gpt_like(), _gpt_like(), _gpt_like()
    o = adamw(ours, lr=1e-2, weight_decay=0.1, nonfinite="unchecked")
    s = adamw(screened, lr=1e-2, weight_decay=0.1)
    t = torch.optim.AdamW(ref, lr=1e-2, weight_decay=0.1)
    o.fused = s.fused = fused
    for step in range(3):
        for ps in (ours, screened, ref):
            for i, p in enumerate(ps):
                p.grad = torch.full_like(p, 0.1 * (step + 1) * (i + 1))
        if step == 2:
            ours[0].grad[1, 2] = float("nan")
            ref[0].grad[1, 2] = float("nan")
            screened[0].grad[1, 2] = float("nan")
            with pytest.raises(FloatingPointError, match="non-finite"):
                s.step()
        else:
            s.step()
        o.step()
        t.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert torch.isnan(ours[0]).any() and not torch.isnan(screened[0]).any()


def test_unchecked_is_a_named_choice():
    from matbal.optim import ChainOptimizer

    with pytest.raises(ValueError, match="nonfinite"):
        ChainOptimizer([torch.zeros(2, requires_grad=True)], nonfinite="ignore")
