"""kddetr.benchmark, the cost tool's helpers: the fused attention fvcore has no formula for is
counted, and timed steps take turns."""
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis

from kddetr.benchmark import interleaved_times, sdpa_flop


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_flops_are_the_two_matrix_products():
    q, k, v = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 6)
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).unsupported_ops_warnings(False)
    assert analysis.total() == 0  # fvcore alone does not count it
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    assert analysis.total() == 2 * 4 * 7 * 5 * (8 + 6)  # q @ k^T and attn @ v, multiply-adds


def test_interleaved_steps_take_turns_over_the_batches():
    calls = []
    steps = {name: (lambda i, name=name: calls.append((name, i))) for name in ("a", "b")}
    times = interleaved_times(steps, num_batches=2, warmup=1, iters=2, device="cpu")
    assert list(times) == ["a", "b"] and all(t >= 0 for t in times.values())
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 0), ("b", 0)]
