"""RT-DETR (Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection", CVPR 2024; RT-DETRv2's decoder),
Detectron2 style, through the same seam as every other family.

ResNet-vd backbone (strides 8, 16, 32) -> hybrid encoder (AIFI on the stride-32 level, CCFM fusion) -> a 1x1
projection per level -> the memory; IoU-aware query selection (the top-``num_queries`` encoder proposals,
their projected memory as content); a deformable decoder whose query positions are an MLP of the reference
box, look-forward-twice refinement, DINO's contrastive denoising; varifocal classification
(:class:`~kddetr.modeling.criterion.SetCriterion` with ``class_loss="varifocal"``).

Where it differs from RT-DETR's code, on purpose: the batch is padded as Detectron2 pads it and the
attention of AIFI, the proposals and the deformable attention ignore the padding (RT-DETR trains on one
fixed size, where there is none); queries that are not its own (shared distillation points) get zero
content, as DAB-DETR's, since RT-DETR's content is the memory at positions it chose itself.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from detectron2.structures import ImageList
from torch import Tensor, nn

from ..criterion import SetCriterion
from ..denoising import ContrastiveDenoising
from ..hybrid_encoder import HybridEncoder, conv_bn
from ..layers import MLP
from ..seam import EncoderState, Queries
from .base import DETRBase, downsample_mask, flatten_levels, init_prediction_heads, layer_heads, layers_of
from .multi_scale import ProposalSelection


class RTDETR(ProposalSelection, DETRBase):
    """RT-DETR detector.

    Args:
        backbone: a Detectron2 backbone (:class:`~kddetr.modeling.resnet_vd.ResNetVd`), whose levels the
            encoder reads (``encoder.in_features``).
        encoder: :class:`~kddetr.modeling.hybrid_encoder.HybridEncoder`.
        decoder: :class:`~kddetr.modeling.decoders.DeformableDecoder` with ``anchor_embedding="box"``,
            look-forward-twice refinement, no final norm, one level per encoder output.
        criterion: :class:`SetCriterion` (varifocal).
        num_classes, embed_dim: K, D.
        num_queries: proposals decoded per image (300).
        dn_number, label_noise_ratio, box_noise_scale: contrastive denoising (100, 0.5, 1.0).
        pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility, input_format: see
            :class:`DETRBase` (the levels are fused by x2 upsampling, so the batch is padded to a multiple
            of the coarsest stride, 32).
    """

    def __init__(self, *, backbone: nn.Module, encoder: HybridEncoder, decoder: nn.Module, criterion: SetCriterion,
                 num_classes: int = 80, embed_dim: int = 256, num_queries: int = 300, dn_number: int = 100,
                 label_noise_ratio: float = 0.5, box_noise_scale: float = 1.0,
                 pixel_mean: Sequence[float] = (123.675, 116.280, 103.530),
                 pixel_std: Sequence[float] = (58.395, 57.120, 57.375), select_box_nums_for_evaluation: int = 300,
                 size_divisibility: int = 32, input_format: str = "RGB"):
        super().__init__(num_classes, pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility)
        self.backbone, self.encoder, self.decoder, self.criterion = backbone, encoder, decoder, criterion
        self.embed_dim, self.num_queries, self.input_format = embed_dim, num_queries, input_format
        # the decoder's own projection of every encoder level (RT-DETR's decoder input_proj)
        self.input_proj = nn.ModuleList(conv_bn(embed_dim, embed_dim, 1) for _ in encoder.in_features)
        self.build_proposal_heads()
        L = decoder.num_layers
        self.class_head = layer_heads(nn.Linear(embed_dim, num_classes), L, True)
        self.box_head = layer_heads(MLP(embed_dim, embed_dim, 4, 3), L, True)
        self.denoising = ContrastiveDenoising(num_classes, embed_dim, dn_number, label_noise_ratio, box_noise_scale)
        self.init_weights()

    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """What RT-DETR's decoder module holds besides its heads: the decoder (with the query-position MLP)
        and the proposals' projection (xavier; the deformable attention keeps its own initialisation)."""
        return [self.decoder, self.enc_output, self.enc_output_norm]

    def init_detector_weights(self) -> None:
        """Every class head (the proposals' included) at the focal prior, every box head's last layer zero,
        the denoising label embedding N(0, 1), the input projections xavier."""
        init_prediction_heads([*layers_of(self.class_head), self.enc_class_head],
                              [*layers_of(self.box_head), self.enc_box_head])
        nn.init.normal_(self.denoising.label_embed.weight)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj.weight)

    def encode(self, images: ImageList, padding_mask: Tensor) -> EncoderState:
        """Backbone, hybrid encoder and the decoder's projections. ``images`` ``[B, 3, H, W]``;
        ``padding_mask`` ``[B, H, W]`` True on padding. The memory ``[B, S, D]`` holds the three levels."""
        feats = self.backbone(images.tensor)
        shapes = [feats[f].shape[-2:] for f in self.encoder.in_features]
        masks = [downsample_mask(padding_mask, s) for s in shapes]
        levels = [proj(x) for proj, x in zip(self.input_proj, self.encoder(feats, masks))]
        _, _, state = flatten_levels(levels, masks, None, list(images.image_sizes))
        return state

    def default_queries(self, state: EncoderState) -> Queries:
        """IoU-aware query selection: the top-``num_queries`` proposals give the reference boxes, their
        projected memory the content (both detached)."""
        return self.select_proposals(state, self.num_queries, content=True)

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """Queries without content (shared distillation points) get zero content."""
        content = queries.content
        if content is None:
            content = queries.boxes.new_zeros(*queries.boxes.shape[:2], self.embed_dim)
        return content, None, queries.boxes
