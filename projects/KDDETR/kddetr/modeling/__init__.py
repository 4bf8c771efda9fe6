"""DETR building blocks and detectors."""
from .criterion import SetCriterion
from .decoders import ConditionalDecoder, DeformableDecoder, DETRDecoder
from .denoising import ContrastiveDenoising, DenoisingMeta
from .detectors import (
                        DABDETR,
                        DINO,
                        RTDETR,
                        ConditionalDETR,
                        DABDeformableDETR,
                        DeformableDETR,
                        DETRBase,
                        MultiScaleDETR,
                        SingleScaleDETR,
)
from .hybrid_encoder import HybridEncoder
from .layers import DeformableEncoder, PositionEmbeddingSine, TransformerEncoder
from .matcher import HungarianMatcher
from .neck import ChannelMapper
from .resnet_vd import ResNetVd
from .seam import DecoderOutput, EncoderState, Queries, QueryGroup, fused_attention_mask

__all__ = [
    "SetCriterion",
    "ConditionalDecoder",
    "DeformableDecoder",
    "DETRDecoder",
    "ContrastiveDenoising",
    "DenoisingMeta",
    "DINO",
    "ConditionalDETR",
    "DABDeformableDETR",
    "DABDETR",
    "DeformableDETR",
    "DETRBase",
    "MultiScaleDETR",
    "SingleScaleDETR",
    "RTDETR",
    "HybridEncoder",
    "ResNetVd",
    "DeformableEncoder",
    "PositionEmbeddingSine",
    "TransformerEncoder",
    "HungarianMatcher",
    "ChannelMapper",
    "DecoderOutput",
    "EncoderState",
    "Queries",
    "QueryGroup",
    "fused_attention_mask",
]
