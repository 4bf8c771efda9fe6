from .base import DETRBase
from .deformable_detr import DABDeformableDETR, DeformableDETR
from .dino import DINO
from .multi_scale import MultiScaleDETR
from .rtdetr import RTDETR
from .single_scale import DABDETR, ConditionalDETR, SingleScaleDETR

__all__ = ["DETRBase", "MultiScaleDETR", "SingleScaleDETR", "DINO", "DeformableDETR", "DABDeformableDETR",
           "DABDETR", "ConditionalDETR", "RTDETR"]
