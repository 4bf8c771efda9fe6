"""Multi-scale deformable attention (Deformable DETR), vectorised in PyTorch.

The only Python loop is over feature levels (4 in practice); batch, queries, heads and
sampling points are handled by one ``grid_sample`` per level.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Sequence[Tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Sample every level bilinearly and combine the samples with the attention weights.

    Args:
        value: ``[B, S, H, Dh]``, the flattened levels concatenated (S = sum of h * w).
        spatial_shapes: ``[(h, w)]`` per level, Python ints (no host sync).
        sampling_locations: ``[B, Q, H, L, P, 2]`` (x, y) normalised to [0, 1].
        attention_weights: ``[B, Q, H, L, P]``, normalised over (L, P).

    Returns:
        ``[B, Q, H * Dh]``.
    """
    B, _, H, Dh = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2.0 * sampling_locations - 1.0  # grid_sample wants [-1, 1]
    samples = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        v = values[lvl].permute(0, 2, 3, 1).reshape(B * H, Dh, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).reshape(B * H, Q, P, 2)
        samples.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    sampled = torch.stack(samples, dim=-2).flatten(-2)  # [B*H, Dh, Q, L*P]
    weights = attention_weights.transpose(1, 2).reshape(B * H, 1, Q, L * P)
    out = (sampled * weights).sum(-1).view(B, H * Dh, Q)
    return out.transpose(1, 2).contiguous()


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
        out = ms_deform_attn(v, spatial_shapes, locations, weights)
        return self.output_proj(out)
