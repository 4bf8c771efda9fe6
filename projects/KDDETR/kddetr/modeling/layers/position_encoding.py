"""Sine position encodings: for feature maps (DETR) and for boxes/points (DAB/DINO queries)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """2-D sine encoding of a padded feature map, as in DETR / Deformable DETR.

    Args:
        num_pos_feats: features per axis; the output has ``2 * num_pos_feats`` channels.
        temperature: frequency base.
        normalize: scale the cumulative coordinates of the valid area to ``[0, scale]``.
        offset: added to the coordinates before normalising (detrex's DINO uses -0.5).
    """

    def __init__(
        self,
        num_pos_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float = 2 * math.pi,
        eps: float = 1e-6,
        offset: float = -0.5,
    ):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps
        self.offset = offset

    def forward(self, mask: Tensor) -> Tensor:
        """``mask`` ``[B, H, W]`` bool, True on padding -> ``[B, 2 * num_pos_feats, H, W]``."""
        not_mask = (~mask).to(torch.float32)
        y = not_mask.cumsum(1)
        x = not_mask.cumsum(2)
        if self.normalize:
            y = (y + self.offset) / (y[:, -1:, :] + self.eps) * self.scale
            x = (x + self.offset) / (x[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats)
        pos_x = _interleave_sin_cos(x[..., None] / dim_t)
        pos_y = _interleave_sin_cos(y[..., None] / dim_t)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


def _interleave_sin_cos(t: Tensor) -> Tensor:
    """``[..., F]`` -> ``[..., F]`` with sin on even and cos on odd features."""
    return torch.stack((t[..., 0::2].sin(), t[..., 1::2].cos()), dim=-1).flatten(-2)


def box_sine_embedding(boxes: Tensor, num_pos_feats: int = 128, temperature: float = 10000.0) -> Tensor:
    """Sine encoding of points or boxes.

    ``boxes`` ``[..., C]`` with C in {2, 4}, coordinates in [0, 1] ordered (x, y[, w, h])
    -> ``[..., C * num_pos_feats]`` ordered (y, x[, w, h]) as in DAB-DETR / DINO.
    """
    scale = 2 * math.pi
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=boxes.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    embeds = [_interleave_sin_cos(boxes[..., i, None] * scale / dim_t) for i in range(boxes.shape[-1])]
    embeds[0], embeds[1] = embeds[1], embeds[0]
    return torch.cat(embeds, dim=-1)
