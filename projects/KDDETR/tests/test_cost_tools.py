"""tools/distill_cost.py counts the fused attention that fvcore has no formula for."""
import os
import sys

import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from distill_cost import sdpa_flop  # noqa: E402


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_flops_are_the_two_matrix_products():
    q, k, v = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 6)
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).unsupported_ops_warnings(False)
    assert analysis.total() == 0  # fvcore alone does not count it
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    assert analysis.total() == 2 * 4 * 7 * 5 * (8 + 6)  # q @ k^T and attn @ v, multiply-adds
