"""DETR building blocks and detectors."""
from .criterion import SetCriterion
from .denoising import ContrastiveDenoising, DenoisingMeta
from .detectors import DINO, DETRBase, DINODecoder
from .layers import DeformableEncoder, PositionEmbeddingSine
from .matcher import HungarianMatcher
from .neck import ChannelMapper
from .seam import DecoderOutput, EncoderState, Queries, QueryGroup, fused_attention_mask

__all__ = [k for k in dir() if not k.startswith("_")]
