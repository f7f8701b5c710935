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
