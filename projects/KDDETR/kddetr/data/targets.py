"""Ground truth in the form DETR losses use."""
from __future__ import annotations

from typing import Dict

import torch
from detectron2.structures import Instances
from torch import Tensor

from torchvision.ops import box_convert


def normalized_cxcywh(boxes_xyxy: Tensor, image_size) -> Tensor:
    """``[N, 4]`` absolute (x0, y0, x1, y1) -> ``[N, 4]`` cxcywh in [0, 1] of ``image_size`` (h, w)."""
    h, w = image_size
    scale = torch.as_tensor([w, h, w, h], dtype=torch.float32, device=boxes_xyxy.device)
    return box_convert(boxes_xyxy.float() / scale, "xyxy", "cxcywh").clamp(0.0, 1.0)


def detr_targets(instances: Instances) -> Dict[str, Tensor]:
    """``{"labels": [N] int64, "boxes": [N, 4] cxcywh in [0, 1]}`` from mapped Instances."""
    if instances.has("gt_boxes_cxcywh"):
        boxes = instances.gt_boxes_cxcywh
    else:
        boxes = normalized_cxcywh(instances.gt_boxes.tensor, instances.image_size)
    return {"labels": instances.gt_classes.to(torch.int64), "boxes": boxes}
