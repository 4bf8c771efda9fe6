"""DETR building blocks and detectors."""
from .criterion import SetCriterion
from .decoders import ConditionalDecoder, DeformableDecoder, DETRDecoder
from .denoising import ContrastiveDenoising, DenoisingMeta
from .detectors import (DINO, ConditionalDETR, DABDeformableDETR, DABDETR, DeformableDETR, DETRBase, MultiScaleDETR,
                        SingleScaleDETR)
from .layers import DeformableEncoder, PositionEmbeddingSine, TransformerEncoder
from .matcher import HungarianMatcher
from .neck import ChannelMapper
from .seam import DecoderOutput, EncoderState, Queries, QueryGroup, fused_attention_mask

__all__ = [k for k in dir() if not k.startswith("_")]
