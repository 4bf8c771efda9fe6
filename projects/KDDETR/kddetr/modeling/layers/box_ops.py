"""Box helpers shared by every DETR in the package (thin wrappers over torchvision)."""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_convert, generalized_box_iou, generalized_box_iou_loss

__all__ = [
    "inverse_sigmoid",
    "cxcywh_to_xyxy",
    "xyxy_to_cxcywh",
    "normalized_cxcywh",
    "generalized_box_iou",
    "generalized_box_iou_loss",
]


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Logit of ``x`` clamped to ``[eps, 1 - eps]`` so that boxes at the border stay finite."""
    x = x.clamp(min=0.0, max=1.0)
    return torch.log(x.clamp(min=eps) / (1.0 - x).clamp(min=eps))


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (cx, cy, w, h) -> (x0, y0, x1, y1)."""
    return box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy")


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x0, y0, x1, y1) -> (cx, cy, w, h)."""
    return box_convert(boxes, in_fmt="xyxy", out_fmt="cxcywh")


def normalized_cxcywh(boxes_xyxy: Tensor, image_size) -> Tensor:
    """``[N, 4]`` absolute (x0, y0, x1, y1) -> ``[N, 4]`` cxcywh in [0, 1] of ``image_size`` (h, w)."""
    h, w = image_size
    b = boxes_xyxy.float()  # divided by Python numbers: no size tensor copied from the host
    scaled = torch.stack([b[..., 0] / w, b[..., 1] / h, b[..., 2] / w, b[..., 3] / h], -1)
    return xyxy_to_cxcywh(scaled).clamp(0.0, 1.0)
