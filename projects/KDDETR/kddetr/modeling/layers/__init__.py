"""Building blocks shared by every DETR variant of the package."""
from .box_ops import cxcywh_to_xyxy, generalized_box_iou, inverse_sigmoid, xyxy_to_cxcywh
from .mlp import MLP
from .ms_deform_attn import MSDeformAttn, ms_deform_attn
from .position_encoding import PositionEmbeddingSine, box_sine_embedding
from .attention import ConditionalDecoderLayer, multi_head_attention
from .transformer import (FFN, DeformableDecoderLayer, DeformableEncoder, DeformableEncoderLayer, TransformerEncoder,
                          TransformerEncoderLayer, pixel_centers)

__all__ = [k for k in dir() if not k.startswith("_")]
