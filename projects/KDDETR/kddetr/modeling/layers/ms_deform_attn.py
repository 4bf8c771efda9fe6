"""Multi-scale deformable attention (Deformable DETR): a fused kernel when one is installed, else PyTorch.

The PyTorch path's only Python loop is over feature levels (4 in practice); batch, queries, heads and
sampling points are handled by one ``grid_sample`` per level. Under mixed precision it samples in float16
(value, grid and weights: the ``[B * H, Dh, Q, L * P]`` samples are the largest tensor of an encoder layer)
and in float32 under bfloat16, whose 8-bit mantissa would place a sampling point up to ~0.4 pixel off on a
100-pixel-wide level.

A fused kernel with the Deformable-DETR kernel's signature (``forward(value, spatial_shapes,
level_start_index, sampling_locations, attention_weights, im2col_step)``, ``backward(..., grad_output,
im2col_step)``) is used where it applies (:func:`fused_kernel`): one registered with
:func:`register_fused_kernel`, a custom op ``torch.ops.kddetr.ms_deform_attn_forward`` / ``_backward``, or
an installed extension (Deformable DETR's ``MultiScaleDeformableAttention``, detrex's ``detrex._C``).
``KDDETR_MS_DEFORM_ATTN=pytorch`` in the environment keeps the PyTorch path.
"""
from __future__ import annotations

import importlib
import math
import os
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


class FusedKernel(NamedTuple):
    """A fused multi-scale deformable attention with the Deformable-DETR kernel's signature.

    ``forward(value [B, S, H, Dh], spatial_shapes [L, 2] int64, level_start_index [L] int64,
    sampling_locations [B, Q, H, L, P, 2], attention_weights [B, Q, H, L, P], im2col_step) -> [B, Q, H * Dh]``;
    ``backward(the same five, grad_output [B, Q, H * Dh], im2col_step) -> (grad_value, grad_sampling_locations,
    grad_attention_weights)``. ``devices``: the device types it runs on; ``dtypes``: the dtypes it takes
    (other inputs are cast to float32 and the output back).
    """

    name: str
    forward: Callable[..., Tensor]
    backward: Callable[..., Sequence[Tensor]]
    devices: Tuple[str, ...] = ("cuda",)
    dtypes: Tuple[torch.dtype, ...] = (torch.float32, torch.float64)


#: the extension modules searched, in order: Deformable DETR's ops build, detrex's
EXTENSIONS = ("MultiScaleDeformableAttention", "detrex._C")
#: the batch chunk of the kernels' im2col (Deformable DETR's and detrex's 64; the kernel takes min(B, step))
IM2COL_STEP = 64
_registered: Optional[FusedKernel] = None
_found: Optional[Tuple[Optional[FusedKernel]]] = None  # the search's result, cached: (kernel or None,)


def register_fused_kernel(kernel: Optional[FusedKernel]) -> None:
    """Use ``kernel`` wherever it applies (None: back to the search of :func:`fused_kernel`)."""
    global _registered
    _registered = kernel


def _custom_op() -> Optional[FusedKernel]:
    try:
        ops = torch.ops.kddetr
        return FusedKernel("torch.ops.kddetr", ops.ms_deform_attn_forward, ops.ms_deform_attn_backward)
    except (AttributeError, RuntimeError):
        return None


def _extension() -> Optional[FusedKernel]:
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except Exception:  # absent, or built for another torch: the PyTorch path serves
            continue
        if hasattr(module, "ms_deform_attn_forward") and hasattr(module, "ms_deform_attn_backward"):
            return FusedKernel(name, module.ms_deform_attn_forward, module.ms_deform_attn_backward)
    return None


def fused_kernel() -> Optional[FusedKernel]:
    """The fused kernel in use: the registered one, else a custom op, else an installed extension (searched once
    per process), else None; always None with ``KDDETR_MS_DEFORM_ATTN=pytorch``."""
    global _found
    if os.environ.get("KDDETR_MS_DEFORM_ATTN", "").lower() == "pytorch":
        return None
    if _registered is not None:
        return _registered
    if _found is None:
        _found = (_custom_op() or _extension(),)
    return _found[0]


class _Fused(torch.autograd.Function):
    """Autograd around a :class:`FusedKernel` (its backward gives the three gradients)."""

    @staticmethod
    def forward(ctx, kernel: FusedKernel, value: Tensor, shapes: Tensor, starts: Tensor, locations: Tensor,
                weights: Tensor) -> Tensor:
        ctx.kernel = kernel
        ctx.save_for_backward(value, shapes, starts, locations, weights)
        return kernel.forward(value, shapes, starts, locations, weights, IM2COL_STEP)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        value, shapes, starts, locations, weights = ctx.saved_tensors
        g_value, g_locations, g_weights = ctx.kernel.backward(value, shapes, starts, locations, weights,
                                                              grad.contiguous(), IM2COL_STEP)
        return None, g_value, None, None, g_locations, g_weights


def sampling_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the PyTorch path samples in for values of ``dtype``: float16 stays (value, grid and weights),
    bfloat16 becomes float32 (its grid would be too coarse), others stay."""
    return torch.float32 if dtype == torch.bfloat16 else dtype


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Sequence[Tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
    spatial_shapes_t: Optional[Tensor] = None,
) -> Tensor:
    """Sample every level bilinearly and combine the samples with the attention weights.

    Args:
        value: ``[B, S, H, Dh]``, the flattened levels concatenated (S = sum of h * w).
        spatial_shapes: ``[(h, w)]`` per level, Python ints (no host sync).
        sampling_locations: ``[B, Q, H, L, P, 2]`` (x, y) normalised to [0, 1].
        attention_weights: ``[B, Q, H, L, P]``, normalised over (L, P).
        spatial_shapes_t: the same shapes as an ``[L, 2]`` int64 tensor on ``value``'s device: with it, a
            :func:`fused_kernel` that runs on that device is used.

    Returns:
        ``[B, Q, H * Dh]`` in ``value``'s dtype.
    """
    kernel = fused_kernel() if spatial_shapes_t is not None else None
    if kernel is not None and value.device.type in kernel.devices:
        dtype = value.dtype if value.dtype in kernel.dtypes else torch.float32
        starts = torch.cat([spatial_shapes_t.new_zeros(1), spatial_shapes_t.prod(1).cumsum(0)[:-1]])
        out = _Fused.apply(kernel, value.to(dtype).contiguous(), spatial_shapes_t, starts,
                           sampling_locations.to(dtype).contiguous(), attention_weights.to(dtype).contiguous())
        return out.to(value.dtype)
    # explicit dtypes, autocast off: under it grid_sample would promote to the grid's float32 and the sum cast
    # the samples to float32, a copy of the largest tensor of the layer
    with torch.autocast(value.device.type, enabled=False):
        return _sample(value, spatial_shapes, sampling_locations, attention_weights, sampling_dtype(value.dtype))


def _sample(value: Tensor, spatial_shapes: Sequence[Tuple[int, int]], sampling_locations: Tensor,
            attention_weights: Tensor, dtype: torch.dtype) -> Tensor:
    """The PyTorch path of :func:`ms_deform_attn`, in ``dtype``."""
    B, _, H, Dh = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    values = value.to(dtype).split([h * w for h, w in spatial_shapes], dim=1)
    grids = (2.0 * sampling_locations - 1.0).to(dtype)  # grid_sample wants [-1, 1]
    samples = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        v = values[lvl].permute(0, 2, 3, 1).reshape(B * H, Dh, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).reshape(B * H, Q, P, 2)
        samples.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    sampled = torch.stack(samples, dim=-2).flatten(-2)  # [B*H, Dh, Q, L*P]
    weights = attention_weights.to(dtype).transpose(1, 2).reshape(B * H, 1, Q, L * P)
    out = (sampled * weights).sum(-1).view(B, H * Dh, Q)
    return out.transpose(1, 2).contiguous().to(value.dtype)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module.

    Args:
        embed_dim: model width D.
        num_heads: H.
        num_levels: L.
        num_points: P sampling points per head and level.
    """

    def __init__(self, embed_dim: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 4):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Offsets start on a ring of directions, one per head, growing with the point index.
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: Sequence[Tuple[int, int]],
        spatial_shapes_t: Tensor,
        value_padding_mask: Optional[Tensor] = None,
    ) -> Tensor:
        """
        Args:
            query: ``[B, Q, D]`` (position embedding already added).
            reference_points: ``[B, Q, L, 2]`` points or ``[B, Q, L, 4]`` boxes, in [0, 1],
                already scaled by each level's valid ratio.
            value: ``[B, S, D]`` flattened multi-level features.
            spatial_shapes: ``[(h, w)]`` per level as Python ints.
            spatial_shapes_t: the same as a ``[L, 2]`` long tensor on the model's device.
            value_padding_mask: ``[B, S]`` bool, True on padded pixels.

        Returns:
            ``[B, Q, D]``.
        """
        B, Q, _ = query.shape
        H, L, P = self.num_heads, self.num_levels, self.num_points
        v = self.value_proj(value)
        if value_padding_mask is not None:
            v = v.masked_fill(value_padding_mask[..., None], 0.0)
        v = v.view(B, -1, H, self.embed_dim // H)
        offsets = self.sampling_offsets(query).view(B, Q, H, L, P, 2)
        weights = self.attention_weights(query).view(B, Q, H, L * P).softmax(-1).view(B, Q, H, L, P)
        if reference_points.shape[-1] == 2:
            normalizer = spatial_shapes_t.flip(-1).to(offsets.dtype)  # (w, h) per level
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            centers = reference_points[:, :, None, :, None, :2]
            sizes = reference_points[:, :, None, :, None, 2:]
            locations = centers + offsets / P * sizes * 0.5
        else:
            raise ValueError(f"reference_points must end in 2 or 4 values, got {tuple(reference_points.shape)}")
        out = ms_deform_attn(v, spatial_shapes, locations, weights, spatial_shapes_t)
        return self.output_proj(out)
