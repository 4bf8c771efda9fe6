"""Deformable DETR (Zhu et al., 2021) with its ``with_box_refine`` and ``two_stage`` options, and
DAB-Deformable DETR (Liu et al., 2022): the same multi-scale model with 4-D anchor queries."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..layers import MLP, box_sine_embedding, inverse_sigmoid
from ..seam import BOX_LOGITS, EncoderState, Queries, QuerySpace
from .base import init_prediction_heads, init_transformer, layer_heads, layers_of
from .multi_scale import MultiScaleDETR, cycled


class DeformableDETR(MultiScaleDETR):
    """Deformable DETR.

    Queries: without ``two_stage``, ``num_queries`` learned embeddings ``[N, 2D]`` (position |
    content); a linear layer maps the position half to a reference *point* (query space
    ``embedding:DeformableDETR:D``). With ``two_stage``, the top-k encoder proposals are the
    reference boxes and position and content are computed from them (query space
    ``box_logits``, shared with DAB-Deformable DETR, DINO and DAB-DETR).

    Args:
        see :class:`MultiScaleDETR` for the shared ones; ``decoder`` is a
        :class:`~kddetr.modeling.decoders.DeformableDecoder` with ``anchor_pos=False`` and
        ``refine="iterative"`` when ``with_box_refine`` else ``"none"``.
        num_queries: 300.
        with_box_refine: per-layer heads, each layer refines the previous layer's box.
        two_stage: encoder proposals as queries (needs ``with_box_refine``).
    """

    def __init__(self, *, num_queries: int = 300, with_box_refine: bool = False, two_stage: bool = False, **kwargs):
        super().__init__(**kwargs)
        if two_stage and not with_box_refine:
            raise ValueError("DeformableDETR: two_stage=True needs with_box_refine=True (as in the paper)")
        expected = "iterative" if with_box_refine else "none"
        if self.decoder.refine != expected or self.decoder.ref_point_head is not None:
            raise ValueError(f"DeformableDETR(with_box_refine={with_box_refine}) needs a DeformableDecoder with "
                             f"anchor_pos=False and refine='{expected}', got refine='{self.decoder.refine}'")
        D, L = self.embed_dim, self.decoder.num_layers
        self.num_queries, self.with_box_refine, self.two_stage = num_queries, with_box_refine, two_stage
        class_head, box_head = nn.Linear(D, self.num_classes), MLP(D, D, 4, 3)
        self.class_head = layer_heads(class_head, L, with_box_refine)
        self.box_head = layer_heads(box_head, L, with_box_refine)
        if two_stage:
            self.query_space = BOX_LOGITS
            self.build_proposal_heads()
            self.pos_trans = nn.Linear(2 * D, 2 * D)
            self.pos_trans_norm = nn.LayerNorm(2 * D)
        else:
            self.query_space = QuerySpace.embedding("DeformableDETR", D)
            self.query_embed = nn.Embedding(num_queries, 2 * D)  # position | content
            self.reference_points = nn.Linear(D, 2)
        self.init_weights()

    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """detrex's ``DeformableDetrTransformer``: encoder, decoder, ``level_embeds``, and
        ``enc_output``, ``pos_trans`` and their norms (two-stage) or ``reference_points``."""
        if self.two_stage:
            extra = [self.enc_output, self.enc_output_norm, self.pos_trans, self.pos_trans_norm]
        else:
            extra = [self.reference_points]
        return super().transformer_parts() + extra

    def init_transformer_weights(self) -> None:
        """detrex: xavier and MSDeformAttn's init, ``reference_points`` xavier-normal with zero
        bias (single-stage), ``level_embeds`` N(0, 1)."""
        init_transformer(self.transformer_parts())
        if not self.two_stage:
            nn.init.xavier_normal_(self.reference_points.weight, gain=1.0)
            nn.init.constant_(self.reference_points.bias, 0.0)
        nn.init.normal_(self.level_embed)

    def init_detector_weights(self) -> None:
        """detrex's ``DeformableDETR.__init__``: ``query_embedding`` N(0, 1); all heads copies of
        one; the (w, h) bias of -2 on the first box head only (shared by every layer without
        box refinement; the first layer's with it), none in two-stage (whose encoder proposal
        heads are copies too)."""
        class_heads, box_heads = layers_of(self.class_head), layers_of(self.box_head)
        if self.two_stage:
            class_heads, box_heads = class_heads + [self.enc_class_head], box_heads + [self.enc_box_head]
        else:
            nn.init.normal_(self.query_embed.weight)
        init_prediction_heads(class_heads, box_heads, first_size_bias=0.0 if self.two_stage else -2.0)

    def default_queries(self, state: EncoderState) -> Queries:
        if self.two_stage:
            return self.select_proposals(state, self.num_queries)
        B, D = state.memory.shape[0], self.embed_dim
        pos, content = self.query_embed.weight[None].expand(B, -1, -1).split(D, -1)
        return Queries(embeds=pos, content=content)

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        D = self.embed_dim
        if self.two_stage:  # position and content from the box (Deformable DETR's two-stage queries)
            pos, content = self.pos_trans_norm(self.pos_trans(box_sine_embedding(queries.boxes.sigmoid(), D // 2))
                                               ).split(D, -1)
            return (content if queries.content is None else queries.content), pos, queries.boxes
        content = queries.content
        if content is None:
            content = cycled(self.query_embed.weight[:, D:], queries.embeds.shape[0], queries.num)
        return content, queries.embeds, self.reference_points(queries.embeds)


class DABDeformableDETR(MultiScaleDETR):
    """DAB-Deformable DETR: learned 4-D anchor boxes and learned content queries (starting at
    zero, as in detrex); the decoder
    recomputes query positions from the anchors every layer (scaled by the content) and refines
    them with per-layer heads. Query space ``box_logits``.

    Args:
        see :class:`MultiScaleDETR`; ``decoder`` is a ``DeformableDecoder(anchor_pos=True,
        query_scale=True, refine="iterative")``.
        num_queries: 300.

    A query without content (a shared distillation point) gets zero content, the value the
    content queries start from: content vector ``i`` is learned together with the model's own
    anchor ``i``, so it does not belong to another model's anchor ``i`` nor to a random one.
    (docs/RESULTS.md, "DAB-Deformable DETR", measures what it changed.)
    """

    def __init__(self, *, num_queries: int = 300, **kwargs):
        super().__init__(**kwargs)
        D, L = self.embed_dim, self.decoder.num_layers
        self.num_queries = num_queries
        class_head, box_head = nn.Linear(D, self.num_classes), MLP(D, D, 4, 3)
        self.class_head = layer_heads(class_head, L, True)
        self.box_head = layer_heads(box_head, L, True)
        self.tgt_embed = nn.Embedding(num_queries, D)
        self.anchor_box_embed = nn.Embedding(num_queries, 4)  # box logits
        self.init_weights()

    def init_detector_weights(self) -> None:
        """detrex's ``DABDeformableDETR.__init__``: content queries zero, anchors
        ``inverse_sigmoid(U(0, 1))`` in all four coordinates clamped to [-3, 3] (sizes 0.05 to
        0.95, mean 0.5), per-layer heads copies of one with -2 on the first box head's (w, h) bias."""
        nn.init.zeros_(self.tgt_embed.weight)
        with torch.no_grad():
            self.anchor_box_embed.weight.uniform_(0.0, 1.0)
            self.anchor_box_embed.weight.copy_(inverse_sigmoid(self.anchor_box_embed.weight, eps=1e-3).clamp(-3, 3))
        init_prediction_heads(layers_of(self.class_head), layers_of(self.box_head), first_size_bias=-2.0)

    def default_queries(self, state: EncoderState) -> Queries:
        B = state.memory.shape[0]
        return Queries(boxes=self.anchor_box_embed.weight[None].expand(B, -1, -1),
                       content=self.tgt_embed.weight[None].expand(B, -1, -1))

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        content = queries.content
        if content is None:
            B, N = queries.boxes.shape[:2]
            content = queries.boxes.new_zeros(B, N, self.embed_dim)
        return content, None, queries.boxes

