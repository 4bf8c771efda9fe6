"""Single-scale DETRs with conditional cross-attention: Conditional DETR (Meng et al., 2021) and
DAB-DETR (Liu et al., 2022). Backbone's last level -> 1x1 projection -> transformer encoder."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from detectron2.structures import ImageList
from torch import Tensor, nn

from ..criterion import SetCriterion
from ..layers import MLP, PositionEmbeddingSine, TransformerEncoder, inverse_sigmoid
from ..seam import EncoderState, Queries, QuerySpace
from .base import DETRBase, downsample_mask, flatten_levels, init_prediction_heads


class SingleScaleDETR(DETRBase):
    """A DETR over one backbone level with a standard transformer encoder and a
    :class:`~kddetr.modeling.decoders.ConditionalDecoder`; class and box heads are shared by
    all decoder layers.

    Args:
        backbone: a Detectron2 backbone; ``in_feature`` names the level used (``"res5"``).
        in_channels: channels of that level (2048 for R50/R101, 512 for R18/R34).
        position_embedding: :class:`PositionEmbeddingSine` with ``embed_dim // 2`` features.
        encoder: :class:`TransformerEncoder`.
        decoder: :class:`ConditionalDecoder`.
        criterion: :class:`SetCriterion`.
        num_classes, embed_dim, num_queries: K, D, N (300).
        pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility: see DETRBase.
        input_format: channel order of the inputs.
        input_norm_groups: 0 (detrex's DAB-DETR and Conditional DETR: the 1x1 projection alone) or the
            groups of a GroupNorm after it, as detrex's ChannelMapper puts after the multi-scale
            families' projections (the synthetic configs: see ``configs/models/dab_detr.py``).
    """

    def __init__(self, backbone: nn.Module, position_embedding: PositionEmbeddingSine, encoder: TransformerEncoder,
                 decoder: nn.Module, criterion: SetCriterion, in_channels: int = 2048, in_feature: str = "res5",
                 num_classes: int = 80, embed_dim: int = 256, num_queries: int = 300,
                 pixel_mean: Sequence[float] = (123.675, 116.280, 103.530),
                 pixel_std: Sequence[float] = (58.395, 57.120, 57.375), select_box_nums_for_evaluation: int = 300,
                 size_divisibility: int = 0, input_format: str = "RGB", input_norm_groups: int = 0):
        super().__init__(num_classes, pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility)
        self.backbone, self.position_embedding = backbone, position_embedding
        self.encoder, self.decoder, self.criterion = encoder, decoder, criterion
        self.in_feature, self.embed_dim = in_feature, embed_dim
        self.num_queries, self.input_format = num_queries, input_format
        self.input_proj = nn.Conv2d(in_channels, embed_dim, kernel_size=1)
        self.input_norm = nn.GroupNorm(input_norm_groups, embed_dim) if input_norm_groups else nn.Identity()
        self.class_head = nn.Linear(embed_dim, num_classes)
        self.box_head = MLP(embed_dim, embed_dim, 4, 3)

    def init_detector_weights(self) -> None:
        """detrex's ``init_weights`` of both detectors: the shared class head at the prior, the
        shared box head's last layer zero (``input_proj`` keeps PyTorch's default, as in detrex)."""
        init_prediction_heads([self.class_head], [self.box_head])

    def encode(self, images: ImageList, padding_mask: Tensor) -> EncoderState:
        """Backbone level ``in_feature`` -> projection -> encoder; the state keeps the memory's
        position embedding (``state.pos``) for the conditional cross-attention."""
        feat = self.input_norm(self.input_proj(self.backbone(images.tensor)[self.in_feature]))
        mask = downsample_mask(padding_mask, feat.shape[-2:])
        pos = self.position_embedding(mask).to(feat.dtype)
        src, pos, state = flatten_levels([feat], [mask], [pos], list(images.image_sizes))
        state.memory = self.encoder(src, pos, state.padding_mask)
        state.pos = pos
        return state


class DABDETR(SingleScaleDETR):
    """DAB-DETR: 300 learned 4-D anchor boxes (query space ``box_logits``), content queries
    starting at zero, anchor refinement and width/height-modulated attention
    (``ConditionalDecoder(anchor_pos=True, modulate_hw=True, refine="look_forward_twice")``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.anchor_box_embed = nn.Embedding(self.num_queries, 4)  # box logits
        self.init_weights()

    def init_detector_weights(self) -> None:
        """detrex's ``DABDETR.init_weights`` (``freeze_anchor_box_centers=True``, its default):
        anchors N(0, 1), then the centres ``inverse_sigmoid(U(0, 1))``; sizes stay
        ``sigmoid(N(0, 1))`` (mean 0.5). detrex's "freeze" sets ``requires_grad`` on a copy, so
        the centres are trained there too, as here."""
        with torch.no_grad():
            nn.init.normal_(self.anchor_box_embed.weight)
            centers = self.anchor_box_embed.weight[:, :2]
            centers.copy_(inverse_sigmoid(centers.uniform_(0.0, 1.0), eps=1e-3))
        super().init_detector_weights()

    def default_queries(self, state: EncoderState) -> Queries:
        return Queries(boxes=self.anchor_box_embed.weight[None].expand(state.memory.shape[0], -1, -1))

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        content = queries.content
        if content is None:
            B, N = queries.boxes.shape[:2]
            content = queries.boxes.new_zeros(B, N, self.embed_dim)
        return content, None, queries.boxes


class ConditionalDETR(SingleScaleDETR):
    """Conditional DETR: 300 learned position embeddings (query space
    ``embedding:ConditionalDETR:D``), each mapped to a reference point by ``MLP(pos)``; content
    starts at zero; every layer predicts its box relative to that point
    (``ConditionalDecoder(anchor_pos=False, modulate_hw=False, refine="none")``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        D = self.embed_dim
        self.query_space = QuerySpace.embedding("ConditionalDETR", D)
        self.query_embed = nn.Embedding(self.num_queries, D)
        self.reference_points = MLP(D, D, 2, 2)  # detrex: transformer.decoder.ref_point_head
        self.init_weights()

    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """detrex's ``ConditionalDetrTransformer``: encoder and decoder, whose ``ref_point_head`` is
        our ``reference_points``."""
        return super().transformer_parts() + [self.reference_points]

    def init_detector_weights(self) -> None:
        """detrex's ``ConditionalDETR``: ``query_embed`` N(0, 1), heads as :class:`SingleScaleDETR`."""
        nn.init.normal_(self.query_embed.weight)
        super().init_detector_weights()

    def default_queries(self, state: EncoderState) -> Queries:
        return Queries(embeds=self.query_embed.weight[None].expand(state.memory.shape[0], -1, -1))

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        content = queries.content
        if content is None:
            content = queries.embeds.new_zeros(queries.embeds.shape)
        return content, queries.embeds, self.reference_points(queries.embeds)
