"""Building blocks shared by every DETR variant of the package."""
from .attention import ConditionalDecoderLayer, multi_head_attention
from .box_ops import cxcywh_to_xyxy, generalized_box_iou, inverse_sigmoid, xyxy_to_cxcywh
from .mlp import MLP
from .ms_deform_attn import MSDeformAttn, ms_deform_attn
from .position_encoding import PositionEmbeddingSine, box_sine_embedding
from .transformer import (
                          FFN,
                          DeformableDecoderLayer,
                          DeformableEncoder,
                          DeformableEncoderLayer,
                          TransformerEncoder,
                          TransformerEncoderLayer,
                          pixel_centers,
)

__all__ = [
    "cxcywh_to_xyxy",
    "generalized_box_iou",
    "inverse_sigmoid",
    "xyxy_to_cxcywh",
    "MLP",
    "MSDeformAttn",
    "ms_deform_attn",
    "PositionEmbeddingSine",
    "box_sine_embedding",
    "ConditionalDecoderLayer",
    "multi_head_attention",
    "FFN",
    "DeformableDecoderLayer",
    "DeformableEncoder",
    "DeformableEncoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "pixel_centers",
]
