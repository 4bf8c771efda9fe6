"""The distillation seam: the three steps every distillable DETR exposes.

``encode(images) -> EncoderState``
    backbone, neck and encoder.
``default_queries(state) -> Queries``
    the detector's own detection queries (learned, or two-stage proposals for DINO).
``decode(state, groups) -> list[DecoderOutput]``
    decodes several :class:`QueryGroup` in **one** decoder pass; a block attention mask
    keeps the groups apart, so each group's output equals a separate pass over it.

Distillation code only talks to detectors through these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


@dataclass
class EncoderState:
    """What the decoder needs from the encoder.

    memory: ``[B, S, D]`` encoder output over all levels.
    padding_mask: ``[B, S]`` bool, True on padded pixels.
    spatial_shapes: ``[(h, w)]`` per level, Python ints.
    spatial_shapes_t: ``[L, 2]`` long tensor of the same.
    level_start_index: ``[L]`` long tensor, offset of each level in ``S``.
    valid_ratios: ``[B, L, 2]`` (w, h) share of each level that is not padding.
    image_sizes: ``[(h, w)]`` per image, unpadded input size.
    """

    memory: Tensor
    padding_mask: Tensor
    spatial_shapes: List[Tuple[int, int]]
    spatial_shapes_t: Tensor
    level_start_index: Tensor
    valid_ratios: Tensor
    image_sizes: List[Tuple[int, int]]


@dataclass
class Queries:
    """A set of decoder queries.

    boxes: ``[B, N, 4]`` reference boxes as *logits* (inverse sigmoid of cxcywh in [0, 1]).
    content: ``[B, N, D]`` content vectors, or None for the detector's default content.
    aux: extra predictions made while choosing the queries (e.g. DINO's encoder
        proposals ``{"logits": [B, N, K], "boxes": [B, N, 4]}``), used by the criterion.
    """

    boxes: Tensor
    content: Optional[Tensor] = None
    aux: Dict[str, Tensor] = field(default_factory=dict)

    @property
    def num(self) -> int:
        return self.boxes.shape[1]


@dataclass
class QueryGroup:
    """Queries decoded together with other groups but kept apart by the attention mask.

    name: unique within one ``decode`` call.
    self_mask: ``[N, N]`` bool, True where a query of this group may *not* attend to
        another query of the group (e.g. the separate denoising groups); None = all visible.
    sees: names of other groups this group may attend to (DINO's denoising queries see
        the matching queries, never the reverse).
    """

    name: str
    queries: Queries
    self_mask: Optional[Tensor] = None
    sees: Tuple[str, ...] = ()


@dataclass
class DecoderOutput:
    """Per decoder layer predictions of one group.

    logits: ``[L, B, N, K]`` class logits (sigmoid classification).
    boxes: ``[L, B, N, 4]`` cxcywh in [0, 1].
    hidden: ``[L, B, N, D]`` normalised decoder states.
    """

    logits: Tensor
    boxes: Tensor
    hidden: Tensor


def fused_attention_mask(groups: Sequence[QueryGroup], device: torch.device) -> Optional[Tensor]:
    """Block attention mask ``[N_total, N_total]`` (True = blocked) for groups in order.

    Returns None when there is a single group without an inner mask.
    """
    if len(groups) == 1 and groups[0].self_mask is None:
        return None
    sizes = [g.queries.num for g in groups]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    index = {g.name: i for i, g in enumerate(groups)}
    if len(index) != len(groups):
        raise ValueError(f"query group names must be unique, got {[g.name for g in groups]}")
    total = sum(sizes)
    mask = torch.ones(total, total, dtype=torch.bool, device=device)
    for i, g in enumerate(groups):
        rows = slice(starts[i], starts[i] + sizes[i])
        mask[rows, rows] = False if g.self_mask is None else g.self_mask
        for other in g.sees:
            if other not in index:
                raise KeyError(f"query group '{g.name}' sees unknown group '{other}'")
            j = index[other]
            mask[rows, starts[j] : starts[j] + sizes[j]] = False
    return mask
