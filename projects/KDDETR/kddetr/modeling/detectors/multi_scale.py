"""The multi-scale half shared by Deformable DETR, DAB-Deformable DETR and DINO: backbone,
channel mapper, deformable encoder, and two-stage proposal selection (RT-DETR's too)."""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch
from detectron2.structures import ImageList
from torch import Tensor, nn

from ..criterion import SetCriterion
from ..layers import MLP, DeformableEncoder, PositionEmbeddingSine, pixel_centers
from ..neck import ChannelMapper
from ..seam import EncoderState, Queries
from .base import DETRBase, downsample_mask, flatten_levels, init_transformer


class ProposalSelection:
    """Two-stage query selection over a multi-scale memory (DINO, two-stage Deformable DETR, RT-DETR): every
    memory position scored as a proposal, the top-k kept as the decoder's reference boxes. Needs
    ``embed_dim`` and ``num_classes``; :meth:`build_proposal_heads` adds its heads."""

    def build_proposal_heads(self) -> None:
        """The heads that score every memory position as a proposal (separate from the decoder's;
        :meth:`init_weights` makes them copies of the decoder's first heads, as in detrex)."""
        D = self.embed_dim
        self.enc_output = nn.Linear(D, D)
        self.enc_output_norm = nn.LayerNorm(D)
        self.enc_class_head = nn.Linear(D, self.num_classes)
        self.enc_box_head = MLP(D, D, 4, 3)

    def select_proposals(self, state: EncoderState, k: int, content: bool = False) -> Queries:
        """Top-``k`` memory positions by class score as reference boxes (detached); ``aux`` holds
        their ``logits`` ``[B, k, K]`` and ``boxes`` ``[B, k, 4]`` for the encoder loss. ``content``: the
        queries' content is the projected memory at the chosen positions, detached (RT-DETR); else None."""
        proposals, valid = self.grid_proposals(state)
        memory = state.memory.masked_fill(~valid[..., None], 0.0)
        memory = self.enc_output_norm(self.enc_output(memory))
        logits = self.enc_class_head(memory)
        boxes = self.enc_box_head(memory) + proposals
        k = min(k, memory.shape[1])
        score = logits.max(-1)[0].masked_fill(~valid, float("-inf"))
        idx = score.topk(k, dim=1)[1]
        top_boxes = torch.gather(boxes, 1, idx[..., None].expand(-1, -1, 4))
        top_logits = torch.gather(logits, 1, idx[..., None].expand(-1, -1, logits.shape[-1]))
        top_content = torch.gather(memory, 1, idx[..., None].expand(-1, -1, memory.shape[-1])).detach() if content \
            else None
        return Queries(boxes=top_boxes.detach(), content=top_content,
                       aux={"logits": top_logits, "boxes": top_boxes.sigmoid()})

    @staticmethod
    def grid_proposals(state: EncoderState) -> Tuple[Tensor, Tensor]:
        """One box per memory position: its pixel centre and a level-dependent size (0.05 * 2^l).

        Returns logits ``[B, S, 4]`` (0 where invalid) and a validity mask ``[B, S]``.
        """
        centers = pixel_centers(state.spatial_shapes, state.valid_ratios)
        sizes = torch.cat([torch.full((h * w,), 0.05 * 2.0 ** lvl, dtype=centers.dtype, device=centers.device)
                           for lvl, (h, w) in enumerate(state.spatial_shapes)])
        props = torch.cat([centers, sizes[None, :, None].expand(centers.shape[0], -1, 2)], -1)
        valid = ((props > 0.01) & (props < 0.99)).all(-1) & ~state.padding_mask
        logits = torch.log(props / (1 - props)).masked_fill(~valid[..., None], 0.0)
        return logits, valid


class MultiScaleDETR(ProposalSelection, DETRBase):
    """A DETR over ``num_levels`` feature levels with a deformable encoder.

    Args:
        backbone: a Detectron2 backbone (``output_shape()``, dict of features).
        neck: :class:`ChannelMapper` to ``num_levels`` levels of ``embed_dim``.
        position_embedding: :class:`PositionEmbeddingSine` with ``embed_dim // 2`` features.
        encoder: :class:`DeformableEncoder`.
        decoder: a :class:`~kddetr.modeling.decoders.DeformableDecoder`.
        criterion: :class:`SetCriterion`.
        num_classes, embed_dim, num_levels: K, D, L.
        pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility: see DETRBase.
        input_format: channel order of the inputs (detectron2's convention).
    """

    def __init__(self, backbone: nn.Module, neck: ChannelMapper, position_embedding: PositionEmbeddingSine,
                 encoder: DeformableEncoder, decoder: nn.Module, criterion: SetCriterion, num_classes: int = 80,
                 embed_dim: int = 256, num_levels: int = 4,
                 pixel_mean: Sequence[float] = (123.675, 116.280, 103.530),
                 pixel_std: Sequence[float] = (58.395, 57.120, 57.375), select_box_nums_for_evaluation: int = 300,
                 size_divisibility: int = 0, input_format: str = "RGB"):
        super().__init__(num_classes, pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility)
        self.backbone, self.neck, self.position_embedding = backbone, neck, position_embedding
        self.encoder, self.decoder, self.criterion = encoder, decoder, criterion
        self.embed_dim, self.input_format = embed_dim, input_format
        self.level_embed = nn.Parameter(torch.zeros(num_levels, embed_dim))  # N(0, 1) in init_weights

    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        return super().transformer_parts() + [self.level_embed]

    def init_transformer_weights(self) -> None:
        """detrex: xavier and MSDeformAttn's init (:func:`init_transformer`), then ``level_embeds`` N(0, 1)."""
        init_transformer(self.transformer_parts())
        nn.init.normal_(self.level_embed)

    def encode(self, images: ImageList, padding_mask: Tensor) -> EncoderState:
        """Backbone, neck and deformable encoder. ``images`` ``[B, 3, H, W]``; ``padding_mask``
        ``[B, H, W]`` True on padding."""
        feats = self.neck(self.backbone(images.tensor))
        masks = [downsample_mask(padding_mask, f.shape[-2:]) for f in feats]
        poss = [self.position_embedding(m).to(f.dtype) + self.level_embed[lvl][None, :, None, None]
                for lvl, (f, m) in enumerate(zip(feats, masks))]
        src, pos, state = flatten_levels(feats, masks, poss, list(images.image_sizes))
        state.memory = self.encoder(src, pos, state.spatial_shapes, state.spatial_shapes_t, state.valid_ratios,
                                    state.padding_mask)
        return state


def cycled(weight: Tensor, batch: int, num: int) -> Tensor:
    """Rows of a learned ``[M, D]`` table for ``num`` queries (cycled when num > M), ``[B, num, D]``."""
    idx = torch.arange(num, device=weight.device) % weight.shape[0]
    return weight[idx][None].expand(batch, -1, -1)
