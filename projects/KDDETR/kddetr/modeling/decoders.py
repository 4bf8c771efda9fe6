"""The two DETR decoder families of the package, sharing one prediction loop.

* :class:`DeformableDecoder`: deformable cross-attention into multi-scale memory (Deformable
  DETR, DAB-Deformable DETR, DINO).
* :class:`ConditionalDecoder`: conditional cross-attention into single-scale memory
  (Conditional DETR, DAB-DETR).

Both take the same inputs: content ``[B, N, D]``, reference logits ``[B, N, 2 | 4]`` (points or
boxes, inverse sigmoid) and, for detectors whose query positions are embeddings, positions
``[B, N, D]``. They differ in how a layer sees the reference and the memory; the box
refinement and the per-layer predictions are :meth:`DETRDecoder.forward`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .layers import MLP, ConditionalDecoderLayer, DeformableDecoderLayer, box_sine_embedding, inverse_sigmoid
from .seam import DecoderOutput, EncoderState

REFINE_MODES = ("none", "iterative", "look_forward_twice")


def refine_boxes(delta: Tensor, ref_logits: Tensor) -> Tensor:
    """Box-head output ``[..., 4]`` relative to a reference ``[..., 2 | 4]`` (logits) -> cxcywh
    in [0, 1]. A 2-D reference (a point) shifts the centre only."""
    if ref_logits.shape[-1] == 2:
        return torch.cat([delta[..., :2] + ref_logits, delta[..., 2:]], -1).sigmoid()
    return (delta + ref_logits).sigmoid()


class DETRDecoder(nn.Module):
    """Prediction loop shared by the decoders.

    Args:
        layers: the decoder layers.
        embed_dim: D.
        refine: how a layer's box becomes the next layer's reference:
            ``"none"`` (Conditional DETR, Deformable DETR: every layer predicts relative to the
            query's own reference), ``"iterative"`` (Deformable DETR with box refinement:
            relative to the previous layer's detached box), ``"look_forward_twice"`` (DAB-DETR,
            DINO: as iterative, but layer l's prediction is relative to the *undetached* box of
            layer l-1, so its loss also trains layer l-1's box head).
        final_norm: a LayerNorm on every layer's output before the heads (DINO, DAB-DETR,
            Conditional DETR; Deformable DETR uses the post-norm output as is). With it, the next
            reference is predicted from the output before the norm, as those detectors do.
    """

    def __init__(self, layers: Sequence[nn.Module], embed_dim: int, refine: str, final_norm: bool):
        super().__init__()
        if refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, got '{refine}'")
        self.embed_dim, self.refine = embed_dim, refine
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(embed_dim) if final_norm else None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def run_layer(self, index: int, tgt: Tensor, ref: Tensor, pos: Optional[Tensor], state: EncoderState,
                  attn_mask: Optional[Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, tgt: Tensor, ref_logits: Tensor, pos: Optional[Tensor], state: EncoderState,
                attn_mask: Optional[Tensor], class_heads: Sequence[nn.Module], box_heads: Sequence[nn.Module]
                ) -> DecoderOutput:
        """
        Args:
            tgt: ``[B, N, D]`` content; ref_logits: ``[B, N, 2 | 4]``; pos: ``[B, N, D]`` or None.
            attn_mask: ``[N, N]`` bool, True = may not attend (the fused groups' block mask).
            class_heads, box_heads: one head per layer (the same module repeated when shared).
        """
        ref = ref_logits.sigmoid()  # the reference a layer attends with (detached after layer 0)
        prev = ref_logits  # logits the layer's *prediction* is relative to
        hidden, boxes, logits = [], [], []
        for i in range(self.num_layers):
            tgt = self.run_layer(i, tgt, ref, pos, state, attn_mask)
            h = self.norm(tgt) if self.norm is not None else tgt
            box = refine_boxes(box_heads[i](h), prev)
            if self.refine != "none":
                # the next reference comes from the layer output before the final norm (DAB-DETR,
                # DINO); without a final norm it is this layer's prediction
                new_ref = box if self.norm is None else refine_boxes(box_heads[i](tgt), inverse_sigmoid(ref))
                ref = new_ref.detach()
                prev = inverse_sigmoid(new_ref if self.refine == "look_forward_twice" else ref)
            hidden.append(h)
            boxes.append(box)
            logits.append(class_heads[i](h))
        return DecoderOutput(logits=torch.stack(logits), boxes=torch.stack(boxes), hidden=torch.stack(hidden))


class DeformableDecoder(DETRDecoder):
    """Deformable DETR decoder.

    Args:
        num_layers, embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points: sizes.
        anchor_pos: query positions are recomputed every layer from the reference box,
            ``MLP(sine(box))`` (DAB-Deformable DETR, DINO); False: positions come with the
            queries (Deformable DETR).
        query_scale: scale the anchor positions by ``MLP(content)`` from the second layer on
            (DAB-Deformable DETR).
        anchor_embedding: what the anchor positions are an MLP of: ``"sine"``, the box's sine embedding
            (``MLP(2D -> D -> D)``, DAB-Deformable DETR, DINO), or ``"box"``, the box itself
            (``MLP(4 -> 2D -> D)``, RT-DETR).
        refine, final_norm: see :class:`DETRDecoder`.
    """

    def __init__(self, num_layers: int = 6, embed_dim: int = 256, num_heads: int = 8, ffn_dim: int = 2048,
                 dropout: float = 0.0, num_levels: int = 4, num_points: int = 4, anchor_pos: bool = True,
                 query_scale: bool = False, refine: str = "look_forward_twice", final_norm: bool = True,
                 anchor_embedding: str = "sine"):
        layers = [DeformableDecoderLayer(embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points)
                  for _ in range(num_layers)]
        super().__init__(layers, embed_dim, refine, final_norm)
        if anchor_embedding not in ("sine", "box"):
            raise ValueError(f"anchor_embedding must be 'sine' or 'box', got '{anchor_embedding}'")
        self.anchor_embedding = anchor_embedding
        head = MLP(2 * embed_dim, embed_dim, embed_dim, 2) if anchor_embedding == "sine" else MLP(4, 2 * embed_dim,
                                                                                                  embed_dim, 2)
        self.ref_point_head = head if anchor_pos else None
        self.query_scale = MLP(embed_dim, embed_dim, embed_dim, 2) if anchor_pos and query_scale else None

    def run_layer(self, index, tgt, ref, pos, state, attn_mask):
        valid = state.valid_ratios if ref.shape[-1] == 2 else torch.cat([state.valid_ratios] * 2, -1)
        ref_input = ref[:, :, None] * valid[:, None]  # [B, N, L, 2 | 4]
        if self.ref_point_head is not None and self.anchor_embedding == "box":
            pos = self.ref_point_head(ref)  # the box in the image's [0, 1] (RT-DETR's query_pos_head)
        elif self.ref_point_head is not None:
            pos = self.ref_point_head(box_sine_embedding(ref_input[:, :, 0], self.embed_dim // 2))
            if self.query_scale is not None and index > 0:
                pos = pos * self.query_scale(tgt)
        return self.layers[index](tgt, pos, ref_input, state.memory, state.spatial_shapes, state.spatial_shapes_t,
                                  state.padding_mask, attn_mask)


class ConditionalDecoder(DETRDecoder):
    """Conditional DETR / DAB-DETR decoder over single-scale memory.

    The spatial query of a layer is the sine embedding of the reference centre, scaled by
    ``MLP(content)`` from the second layer on.

    Args:
        num_layers, embed_dim, num_heads, ffn_dim, dropout: sizes.
        anchor_pos: references are 4-D anchor boxes and the query position is
            ``MLP(sine(box))`` (DAB-DETR); False: references are points and positions come with
            the queries (Conditional DETR).
        modulate_hw: DAB-DETR's width/height-modulated attention (needs ``anchor_pos``).
        refine, final_norm: see :class:`DETRDecoder`.
        activation: of the FFNs (DAB-DETR: ``"prelu"``).
    """

    def __init__(self, num_layers: int = 6, embed_dim: int = 256, num_heads: int = 8, ffn_dim: int = 2048,
                 dropout: float = 0.0, anchor_pos: bool = True, modulate_hw: bool = True,
                 refine: str = "look_forward_twice", final_norm: bool = True, activation: str = "relu"):
        layers = [ConditionalDecoderLayer(embed_dim, num_heads, ffn_dim, dropout, first=i == 0, activation=activation)
                  for i in range(num_layers)]
        super().__init__(layers, embed_dim, refine, final_norm)
        if modulate_hw and not anchor_pos:
            raise ValueError("modulate_hw needs anchor boxes (anchor_pos=True)")
        self.ref_point_head = MLP(2 * embed_dim, embed_dim, embed_dim, 2) if anchor_pos else None
        self.query_scale = MLP(embed_dim, embed_dim, embed_dim, 2) if num_layers > 1 else None
        self.ref_anchor_head = MLP(embed_dim, embed_dim, 2, 2) if modulate_hw else None

    def run_layer(self, index, tgt, ref, pos, state, attn_mask):
        D = self.embed_dim
        sine = box_sine_embedding(ref, D // 2)  # [B, N, C * D / 2], ordered (y, x[, w, h])
        if self.ref_point_head is not None:
            pos = self.ref_point_head(sine)
        spatial = sine[..., :D]
        if index > 0:
            spatial = spatial * self.query_scale(tgt)
        if self.ref_anchor_head is not None:
            # attention width/height follow the ratio of a predicted size to the anchor's size
            hw = self.ref_anchor_head(tgt).sigmoid()
            spatial = torch.cat([spatial[..., : D // 2] * (hw[..., 1] / ref[..., 3])[..., None],
                                 spatial[..., D // 2:] * (hw[..., 0] / ref[..., 2])[..., None]], -1)
        return self.layers[index](tgt, pos, spatial, state.memory, state.pos, state.padding_mask, attn_mask)
