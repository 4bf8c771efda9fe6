import itertools

import pytest
import torch

from kddetr.modeling.layers import MSDeformAttn, ms_deform_attn


def naive_ms_deform_attn(value, shapes, locations, weights):
    """Per sample, level, head, query and point bilinear sampling (zero padding, pixel centres at +0.5)."""
    B, S, H, Dh = value.shape
    _, Q, _, L, P, _ = locations.shape
    out = torch.zeros(B, Q, H, Dh, dtype=value.dtype)
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    for b, lvl in itertools.product(range(B), range(L)):
        h, w = shapes[lvl]
        fmap = value[b, starts[lvl]:starts[lvl + 1]].view(h, w, H, Dh)
        for q, head, p in itertools.product(range(Q), range(H), range(P)):
            x = locations[b, q, head, lvl, p, 0] * w - 0.5
            y = locations[b, q, head, lvl, p, 1] * h - 0.5
            x0, y0 = int(torch.floor(x)), int(torch.floor(y))
            sample = torch.zeros(Dh, dtype=value.dtype)
            for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                if 0 <= xi < w and 0 <= yi < h:
                    wt = (1 - abs(x - xi)) * (1 - abs(y - yi))
                    sample += wt * fmap[yi, xi, head]
            out[b, q, head] += weights[b, q, head, lvl, p] * sample
    return out.flatten(2)


@pytest.mark.parametrize("B,Q,H,Dh,P,shapes", [
    (1, 3, 2, 4, 2, [(5, 7)]),
    (2, 4, 2, 3, 3, [(6, 4), (3, 2)]),
    (2, 5, 4, 2, 2, [(8, 8), (4, 4), (2, 2), (1, 1)]),
])
def test_vectorised_equals_naive_loop(B, Q, H, Dh, P, shapes):
    g = torch.Generator().manual_seed(B * 100 + Q)
    S, L = sum(h * w for h, w in shapes), len(shapes)
    value = torch.randn(B, S, H, Dh, generator=g, dtype=torch.float64)
    # include locations outside [0, 1] to exercise zero padding
    locations = torch.rand(B, Q, H, L, P, 2, generator=g, dtype=torch.float64) * 1.2 - 0.1
    weights = torch.rand(B, Q, H, L, P, generator=g, dtype=torch.float64)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    got = ms_deform_attn(value, shapes, locations, weights)
    want = naive_ms_deform_attn(value, shapes, locations, weights)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_module_shapes_and_box_references():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dim=16, num_heads=4, num_levels=2, num_points=3)
    shapes = [(6, 5), (3, 3)]
    S = sum(h * w for h, w in shapes)
    q, v = torch.randn(2, 7, 16), torch.randn(2, S, 16)
    shapes_t = torch.tensor(shapes)
    out2 = attn(q, torch.rand(2, 7, 2, 2), v, shapes, shapes_t)
    out4 = attn(q, torch.rand(2, 7, 2, 4), v, shapes, shapes_t)
    assert out2.shape == out4.shape == (2, 7, 16)
    with pytest.raises(ValueError, match="end in 2 or 4"):
        attn(q, torch.rand(2, 7, 2, 3), v, shapes, shapes_t)
