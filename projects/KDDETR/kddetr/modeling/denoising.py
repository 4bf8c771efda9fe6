"""DINO's contrastive denoising (CDN) query groups.

Each ground-truth box yields a *positive* query (small box noise, to be reconstructed)
and a *negative* query (larger noise, to be classified as background). The batch's
``max_gt`` boxes form one group of ``2 * max_gt`` queries; ``dn_number // max_gt`` groups
are built. Groups may not see each other; they may see the matching queries, while the
matching queries never see them (DINO's attention mask).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from .groups import DENOISING, DETECTION
from .layers.box_ops import cxcywh_to_xyxy, inverse_sigmoid, xyxy_to_cxcywh
from .seam import Assignment, Queries, QueryGroup, Targets


@dataclass
class DenoisingMeta:
    """Where the positive queries of each image sit in the denoising group.

    num_groups: G; group_size: ``2 * max_gt`` queries per group.
    """

    num_groups: int
    group_size: int
    max_gt: int

    def positive_indices(self, targets: Targets) -> Assignment:
        """Per image ``(query_index, target_index)``: positive query of box j in group g is
        ``g * group_size + j``."""
        out = []
        for t in targets:
            n, device = len(t["labels"]), t["labels"].device  # built on the device: no copy per image
            j = torch.arange(n, dtype=torch.int64, device=device)
            g = torch.arange(self.num_groups, dtype=torch.int64, device=device)
            out.append(((g[:, None] * self.group_size + j[None]).flatten(), j.repeat(self.num_groups)))
        return out


class ContrastiveDenoising(nn.Module):
    """Builds the denoising :class:`QueryGroup` from the targets.

    Args:
        num_classes: K; label_embed maps a (possibly flipped) label to a content vector.
        embed_dim: D.
        dn_number: number of positive denoising queries per image to aim for (DINO: 100).
        label_noise_ratio: probability x 2 of replacing a label by a random one (DINO: 0.5).
        box_noise_scale: box noise relative to half the box size (DINO: 1.0).
    """

    def __init__(self, num_classes: int, embed_dim: int, dn_number: int = 100,
                 label_noise_ratio: float = 0.5, box_noise_scale: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.dn_number = dn_number
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.label_embed = nn.Embedding(num_classes, embed_dim)

    def forward(self, targets: Targets) -> Optional[Tuple[QueryGroup, DenoisingMeta]]:
        """Returns None when the batch has no boxes or ``dn_number`` is 0."""
        max_gt = max((len(t["labels"]) for t in targets), default=0)
        if max_gt == 0 or self.dn_number <= 0:
            return None
        B = len(targets)
        G = max(1, self.dn_number // max_gt)
        device = self.label_embed.weight.device
        labels = torch.zeros(B, max_gt, dtype=torch.int64, device=device)
        boxes = torch.full((B, max_gt, 4), 0.5, device=device)
        valid = torch.zeros(B, max_gt, dtype=torch.bool, device=device)
        for i, t in enumerate(targets):
            n = len(t["labels"])
            labels[i, :n], boxes[i, :n], valid[i, :n] = t["labels"], t["boxes"], True
        # [B, G, 2 (positive, negative), max_gt]
        labels = labels[:, None, None].expand(B, G, 2, max_gt).clone()
        boxes = boxes[:, None, None].expand(B, G, 2, max_gt, 4)
        valid = valid[:, None, None].expand(B, G, 2, max_gt)

        if self.label_noise_ratio > 0:
            flip = torch.rand(labels.shape, device=device) < self.label_noise_ratio * 0.5
            labels = torch.where(flip, torch.randint_like(labels, self.num_classes), labels)
        if self.box_noise_scale > 0:
            xyxy = cxcywh_to_xyxy(boxes)
            half = torch.cat([boxes[..., 2:], boxes[..., 2:]], -1) / 2
            sign = torch.randint_like(xyxy, 0, 2) * 2.0 - 1.0
            part = torch.rand_like(xyxy)
            part[:, :, 1] += 1.0  # negatives: noise beyond the positives' range
            xyxy = (xyxy + sign * part * half * self.box_noise_scale).clamp(0.0, 1.0)
            boxes = xyxy_to_cxcywh(xyxy)

        content = self.label_embed(labels) * valid[..., None]
        queries = Queries(boxes=inverse_sigmoid(boxes).reshape(B, -1, 4),
                          content=content.reshape(B, -1, content.shape[-1]))
        group_size = 2 * max_gt
        group_id = torch.arange(G * group_size, device=device) // group_size
        self_mask = group_id[:, None] != group_id[None, :]
        group = QueryGroup(name=DENOISING, queries=queries, self_mask=self_mask, sees=(DETECTION,))
        return group, DenoisingMeta(num_groups=G, group_size=group_size, max_gt=max_gt)
