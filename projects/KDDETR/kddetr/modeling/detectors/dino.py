"""DINO: DETR with improved deNoising anchOr boxes (Zhang et al., 2022), Detectron2 style.

Two-stage mixed query selection, contrastive denoising, look-forward-twice box
refinement, multi-scale deformable encoder/decoder, focal classification. Sizes follow
detrex's ``dino_r50_4scale_12ep`` and are all constructor arguments.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

from torch import Tensor, nn

from ..denoising import ContrastiveDenoising
from ..layers import MLP
from ..seam import EncoderState, Queries
from .base import init_prediction_heads, layer_heads, layers_of
from .multi_scale import MultiScaleDETR, cycled


class DINO(MultiScaleDETR):
    """DINO detector.

    Args:
        backbone, neck, position_embedding, encoder, criterion, num_classes, embed_dim,
            num_levels, pixel_mean, pixel_std, select_box_nums_for_evaluation,
            size_divisibility, input_format: see :class:`MultiScaleDETR`.
        decoder: :class:`~kddetr.modeling.decoders.DeformableDecoder` with anchor positions and
            look-forward-twice refinement.
        num_queries: two-stage proposals decoded per image (DINO: 900).
        share_heads: one class/box head for all decoder layers (DINO's original code) instead of
            one per layer (detrex, whose checkpoints tools/convert_detrex.py reads).
        dn_number, label_noise_ratio, box_noise_scale: contrastive denoising (100, 0.5, 1.0).
    """

    def __init__(self, *, num_queries: int = 900, share_heads: bool = False, dn_number: int = 100,
                 label_noise_ratio: float = 0.5, box_noise_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        D = self.embed_dim
        self.num_queries = num_queries
        self.build_proposal_heads()
        class_head, box_head = nn.Linear(D, self.num_classes), MLP(D, D, 4, 3)
        self.class_head = layer_heads(class_head, self.decoder.num_layers, not share_heads)
        self.box_head = layer_heads(box_head, self.decoder.num_layers, not share_heads)
        self.tgt_embed = nn.Embedding(num_queries, D)  # static content queries
        self.denoising = ContrastiveDenoising(self.num_classes, D, dn_number, label_noise_ratio, box_noise_scale)
        self.init_weights()

    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """detrex's ``DINOTransformer``: encoder, decoder (with ``ref_point_head`` and the final
        norm), ``level_embeds``, ``tgt_embed``, ``enc_output`` and its norm."""
        return super().transformer_parts() + [self.tgt_embed, self.enc_output, self.enc_output_norm]

    def init_detector_weights(self) -> None:
        """detrex's ``DINO.__init__``: heads per decoder layer and the encoder's proposal heads all
        copies of one (class bias at the prior, last box layer zero, no size bias: detrex sets -2
        on the first box head and then 0 on all of them), ``label_enc`` N(0, 1)."""
        init_prediction_heads([*layers_of(self.class_head), self.enc_class_head],
                              [*layers_of(self.box_head), self.enc_box_head])
        nn.init.normal_(self.denoising.label_embed.weight)

    def default_queries(self, state: EncoderState) -> Queries:
        """Mixed query selection: top-k encoder proposals give the anchor boxes, content is learned."""
        queries = self.select_proposals(state, self.num_queries)
        queries.content = cycled(self.tgt_embed.weight, queries.boxes.shape[0], queries.num)
        return queries

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """Queries without content get the learned content queries, cycled."""
        content = queries.content
        if content is None:
            content = cycled(self.tgt_embed.weight, queries.boxes.shape[0], queries.num)
        return content, None, queries.boxes
