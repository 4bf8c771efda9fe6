"""Deformable transformer encoder and decoder layers shared by the multi-scale DETRs."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .mlp import MLP
from .ms_deform_attn import MSDeformAttn


class FFN(nn.Module):
    """Post-norm feed-forward block: ``norm(x + W2 act(W1 x))``; ``activation`` is ``"relu"``,
    ``"prelu"`` (DAB-DETR) or ``"gelu"`` (RT-DETR's AIFI)."""

    ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "prelu": nn.PReLU, "gelu": nn.GELU}

    def __init__(self, embed_dim: int, ffn_dim: int, dropout: float, activation: str = "relu"):
        super().__init__()
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"FFN activation must be one of {sorted(self.ACTIVATIONS)}, got '{activation}'")
        self.net = nn.Sequential(
            nn.Linear(embed_dim, ffn_dim), self.ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, embed_dim), nn.Dropout(dropout),
        )
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.net(x))


def pixel_centers(spatial_shapes: Sequence[Tuple[int, int]], valid_ratios: Tensor) -> Tensor:
    """Centre (x, y) of every pixel of every level, ``[B, S, 2]``, normalised by the level's
    unpadded size (so the valid area spans [0, 1]). ``valid_ratios`` ``[B, L, 2]`` (w, h)."""
    points = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=valid_ratios.dtype, device=valid_ratios.device) + 0.5,
            torch.arange(w, dtype=valid_ratios.dtype, device=valid_ratios.device) + 0.5,
            indexing="ij",
        )
        xs = xs.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        ys = ys.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        points.append(torch.stack((xs, ys), -1))
    return torch.cat(points, 1)


class DeformableEncoderLayer(nn.Module):
    """Multi-scale deformable self-attention + FFN, post-norm."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, num_levels: int, num_points: int):
        super().__init__()
        self.self_attn = MSDeformAttn(embed_dim, num_heads, num_levels, num_points)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)
        self.ffn = FFN(embed_dim, ffn_dim, dropout)

    def forward(self, src, pos, reference_points, spatial_shapes, spatial_shapes_t, padding_mask):
        attn = self.self_attn(src + pos, reference_points, src, spatial_shapes, spatial_shapes_t, padding_mask)
        return self.ffn(self.norm(src + self.dropout(attn)))


class DeformableEncoder(nn.Module):
    """A stack of deformable encoder layers over the flattened multi-scale features.

    Args:
        num_layers, embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points: sizes.
    """

    def __init__(
        self,
        num_layers: int = 6,
        embed_dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.0,
        num_levels: int = 4,
        num_points: int = 4,
    ):
        super().__init__()
        self.embed_dim, self.num_levels = embed_dim, num_levels
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points)
            for _ in range(num_layers)
        )

    @staticmethod
    def reference_points(spatial_shapes: Sequence[Tuple[int, int]], valid_ratios: Tensor) -> Tensor:
        """Pixel centres of every level as seen from every level, ``[B, S, L, 2]``."""
        return pixel_centers(spatial_shapes, valid_ratios)[:, :, None] * valid_ratios[:, None]

    def forward(self, src, pos, spatial_shapes, spatial_shapes_t, valid_ratios, padding_mask) -> Tensor:
        """``src``/``pos`` ``[B, S, D]``, ``padding_mask`` ``[B, S]`` -> memory ``[B, S, D]``."""
        ref = self.reference_points(spatial_shapes, valid_ratios)
        for layer in self.layers:
            src = layer(src, pos, ref, spatial_shapes, spatial_shapes_t, padding_mask)
        return src


class DeformableDecoderLayer(nn.Module):
    """Self-attention among queries, deformable cross-attention into the memory, FFN (post-norm)."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, num_levels: int, num_points: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.cross_attn = MSDeformAttn(embed_dim, num_heads, num_levels, num_points)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FFN(embed_dim, ffn_dim, dropout)

    def forward(
        self,
        tgt: Tensor,
        query_pos: Tensor,
        reference_points: Tensor,
        memory: Tensor,
        spatial_shapes,
        spatial_shapes_t: Tensor,
        memory_padding_mask: Optional[Tensor],
        attn_mask: Optional[Tensor],
    ) -> Tensor:
        """``tgt``/``query_pos`` ``[B, N, D]``; ``attn_mask`` ``[N, N]`` bool, True = may not attend."""
        q = k = tgt + query_pos
        attn = self.self_attn(q, k, tgt, attn_mask=attn_mask, need_weights=False)[0]
        tgt = self.norm1(tgt + self.dropout(attn))
        attn = self.cross_attn(
            tgt + query_pos, reference_points, memory, spatial_shapes, spatial_shapes_t, memory_padding_mask
        )
        tgt = self.norm2(tgt + self.dropout(attn))
        return self.ffn(tgt)


class TransformerEncoderLayer(nn.Module):
    """DETR encoder layer over one feature level: self-attention (position added to queries and
    keys) + FFN, post-norm."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, activation: str = "relu"):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)
        self.ffn = FFN(embed_dim, ffn_dim, dropout, activation)

    def forward(self, src: Tensor, pos: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
        q = k = src + pos
        attn = self.self_attn(q, k, src, key_padding_mask=padding_mask, need_weights=False)[0]
        return self.ffn(self.norm(src + self.dropout(attn)))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderLayer` (Conditional DETR, DAB-DETR).

    Args:
        num_layers, embed_dim, num_heads, ffn_dim, dropout: sizes.
        pos_scale: DAB-DETR scales the position embedding by ``MLP(src)`` in every layer.
        activation: of the FFNs (DAB-DETR: ``"prelu"``).
    """

    def __init__(self, num_layers: int = 6, embed_dim: int = 256, num_heads: int = 8, ffn_dim: int = 2048,
                 dropout: float = 0.0, pos_scale: bool = False, activation: str = "relu"):
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(embed_dim, num_heads, ffn_dim, dropout, activation)
                                    for _ in range(num_layers))
        self.query_scale = MLP(embed_dim, embed_dim, embed_dim, 2) if pos_scale and num_layers else None

    def forward(self, src: Tensor, pos: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
        """``src``/``pos`` ``[B, S, D]``, ``padding_mask`` ``[B, S]`` -> memory ``[B, S, D]``."""
        for layer in self.layers:
            scaled = pos * self.query_scale(src) if self.query_scale is not None else pos
            src = layer(src, scaled, padding_mask)
        return src
