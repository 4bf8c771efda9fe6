import importlib
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


def _inputs(B=2, Q=6, H=4, Dh=8, P=3, shapes=((10, 12), (5, 6), (3, 3)), seed=0):
    g = torch.Generator().manual_seed(seed)
    S, L = sum(h * w for h, w in shapes), len(shapes)
    value = torch.randn(B, S, H, Dh, generator=g)
    locations = torch.rand(B, Q, H, L, P, 2, generator=g)
    weights = torch.rand(B, Q, H, L, P, generator=g)
    return value, list(shapes), locations, weights / weights.sum((-1, -2), keepdim=True)


def test_half_precision_sampling_is_within_tolerance_of_float32():
    """float16 values sample in float16 (value, grid and weights; the output float16) and stay within 1e-2 of
    float32 on the same inputs; bfloat16 values sample in float32 (its grid would be too coarse), so they
    differ from float32 only by the rounding of the value and the output."""
    from kddetr.modeling.layers.ms_deform_attn import sampling_dtype

    value, shapes, locations, weights = _inputs()
    ref = ms_deform_attn(value, shapes, locations, weights)
    half = ms_deform_attn(value.half(), shapes, locations, weights)
    assert half.dtype == torch.float16 and sampling_dtype(torch.float16) == torch.float16
    torch.testing.assert_close(half.float(), ref, rtol=1e-2, atol=1e-2)
    assert (half.float() - ref).abs().max() > 0  # it did compute in half
    bf16 = ms_deform_attn(value.bfloat16(), shapes, locations, weights)
    assert bf16.dtype == torch.bfloat16 and sampling_dtype(torch.bfloat16) == torch.float32
    want = ms_deform_attn(value.bfloat16().float(), shapes, locations, weights).bfloat16()
    torch.testing.assert_close(bf16, want, rtol=0, atol=0)


def test_module_under_autocast_keeps_the_samples_in_half_precision():
    """Under autocast the value projection gives float16 and the attention samples in it: the output is within
    tolerance of float32, and no float32 tensor of the samples' size is made (the grid is not promoted)."""
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dim=32, num_heads=4, num_levels=3, num_points=3)
    value, shapes, _, _ = _inputs()
    S = value.shape[1]
    q, v, ref_pts = torch.randn(2, 6, 32), torch.randn(2, S, 32), torch.rand(2, 6, 3, 2)
    shapes_t = torch.tensor(shapes)
    ref = attn(q, ref_pts, v, shapes, shapes_t)
    big = []

    class Watch(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.nn.functional.grid_sample:
                big.append(out.dtype)
            return out

    with torch.autocast("cpu", dtype=torch.float16), Watch():
        amp = attn(q, ref_pts, v, shapes, shapes_t)
    assert big and set(big) == {torch.float16}
    torch.testing.assert_close(amp.float(), ref, rtol=2e-2, atol=2e-2)


class RecordingKernel:
    """A stand-in for a fused kernel: records its calls and computes with the PyTorch path."""

    def __init__(self):
        self.calls = []

    def forward(self, value, shapes, starts, locations, weights, im2col_step):
        self.calls.append(("forward", shapes.tolist(), starts.tolist(), im2col_step, value.dtype))
        pairs = [tuple(s) for s in shapes.tolist()]
        return ms_deform_attn(value, pairs, locations, weights)

    def backward(self, value, shapes, starts, locations, weights, grad, im2col_step):
        self.calls.append(("backward", grad.shape))
        pairs = [tuple(s) for s in shapes.tolist()]
        inputs = [t.detach().requires_grad_(True) for t in (value, locations, weights)]
        with torch.enable_grad():
            out = ms_deform_attn(inputs[0], pairs, inputs[1], inputs[2])
        return torch.autograd.grad(out, inputs, grad)


def test_a_fused_kernel_is_dispatched_to_where_it_applies(monkeypatch):
    """A registered kernel runs forward and backward with the Deformable-DETR kernel's arguments (level start
    indices computed on the device, im2col step 64), its gradients reach the module's parameters, and the
    PyTorch path serves a device it does not run on, a call without the shapes tensor and
    KDDETR_MS_DEFORM_ATTN=pytorch."""
    module = importlib.import_module("kddetr.modeling.layers.ms_deform_attn")

    kernel = RecordingKernel()
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dim=16, num_heads=4, num_levels=2, num_points=3)
    shapes = [(6, 5), (3, 3)]
    q, v, ref_pts = torch.randn(2, 7, 16), torch.randn(2, 39, 16), torch.rand(2, 7, 2, 2)
    want = attn(q, ref_pts, v, shapes, torch.tensor(shapes))
    want.sum().backward()
    grads = [p.grad.clone() for p in attn.parameters()]
    attn.zero_grad()
    try:
        module.register_fused_kernel(module.FusedKernel("stand-in", kernel.forward, kernel.backward, ("cpu",)))
        got = attn(q, ref_pts, v, shapes, torch.tensor(shapes))
        got.sum().backward()
        assert [c[0] for c in kernel.calls] == ["forward", "backward"]
        assert kernel.calls[0][1:] == ([[6, 5], [3, 3]], [0, 30], 64, torch.float32)
        torch.testing.assert_close(got, want)
        for p, g in zip(attn.parameters(), grads):
            torch.testing.assert_close(p.grad, g)
        kernel.calls.clear()
        ms_deform_attn(*_inputs())  # no shapes tensor: the PyTorch path
        monkeypatch.setenv("KDDETR_MS_DEFORM_ATTN", "pytorch")
        attn(q, ref_pts, v, shapes, torch.tensor(shapes))
        monkeypatch.delenv("KDDETR_MS_DEFORM_ATTN")
        module.register_fused_kernel(module.FusedKernel("cuda only", kernel.forward, kernel.backward))
        attn(q, ref_pts, v, shapes, torch.tensor(shapes))
        assert kernel.calls == []
        # a half-precision value reaches a float32-only kernel in float32 and comes back in half
        module.register_fused_kernel(module.FusedKernel("stand-in", kernel.forward, kernel.backward, ("cpu",)))
        value, shapes2, locations, weights = _inputs()
        out = ms_deform_attn(value.half(), shapes2, locations, weights, torch.tensor(shapes2))
        assert out.dtype == torch.float16 and kernel.calls[-1][-1] == torch.float32
    finally:
        module.register_fused_kernel(None)


def test_without_a_kernel_installed_the_search_finds_none():
    """On this machine no extension is installed: the search finds nothing, and an installed module with the
    kernel's two functions would be taken (a fake module in sys.modules)."""
    import sys
    import types

    module = importlib.import_module("kddetr.modeling.layers.ms_deform_attn")

    assert module._extension() is None and module._custom_op() is None
    fake = types.ModuleType("MultiScaleDeformableAttention")
    fake.ms_deform_attn_forward, fake.ms_deform_attn_backward = (lambda *a: None), (lambda *a: None)
    sys.modules["MultiScaleDeformableAttention"] = fake
    try:
        found = module._extension()
        assert found.name == "MultiScaleDeformableAttention" and found.devices == ("cuda",)
    finally:
        del sys.modules["MultiScaleDeformableAttention"]
