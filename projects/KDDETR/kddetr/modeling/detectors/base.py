"""What every DETR of the package shares: input normalisation, targets, top-k inference."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, ImageList, Instances
from torch import Tensor, nn

from ...data.targets import detr_targets
from ..layers.box_ops import cxcywh_to_xyxy
from ..seam import DecoderOutput


class DETRBase(nn.Module):
    """Base class with the Detectron2 I/O of a DETR.

    Args:
        num_classes: K.
        pixel_mean, pixel_std: per channel, in the order of ``input_format``.
        select_box_nums_for_evaluation: detections kept per image (top-k over queries x classes).
        size_divisibility: pad the batch to a multiple of this (0 = none).
    """

    #: what a query is, so a distiller can check that teacher and student decode the same
    #: distillation points: reference boxes ``[B, N, 4]`` as inverse-sigmoid cxcywh.
    query_format: str = "box_logits"

    def __init__(self, num_classes: int, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 select_box_nums_for_evaluation: int = 300, size_divisibility: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.select_box_nums_for_evaluation = select_box_nums_for_evaluation
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> Tuple[ImageList, Tensor]:
        """Normalise and pad. Returns the ImageList and a ``[B, H, W]`` bool mask, True on padding."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, self.size_divisibility)
        B, _, H, W = images.tensor.shape
        mask = torch.ones(B, H, W, dtype=torch.bool, device=self.device)
        for i, (h, w) in enumerate(images.image_sizes):
            mask[i, :h, :w] = False
        return images, mask

    def prepare_targets(self, batched_inputs: List[Dict]) -> List[Dict[str, Tensor]]:
        """Per image ``{"labels": [T], "boxes": [T, 4] cxcywh in [0, 1]}`` on the model's device."""
        if any("instances" not in x for x in batched_inputs):
            raise ValueError(
                "Training needs ground truth: an input has no 'instances'. Use a dataset with "
                "annotations and a mapper with is_train=True (kddetr.data.DetrDatasetMapper)."
            )
        return [{k: v.to(self.device) for k, v in detr_targets(x["instances"]).items()} for x in batched_inputs]

    def inference(self, output: DecoderOutput, batched_inputs: List[Dict],
                  image_sizes: List[Tuple[int, int]]) -> List[Dict[str, Instances]]:
        """Top-k over (query, class) of the last layer, boxes rescaled to each original image."""
        logits, boxes = output.logits[-1], output.boxes[-1]
        B, Q, K = logits.shape
        k = min(self.select_box_nums_for_evaluation, Q * K)
        scores, idx = logits.sigmoid().flatten(1).topk(k, dim=1)
        query = torch.div(idx, K, rounding_mode="floor")
        labels = idx % K
        boxes = cxcywh_to_xyxy(torch.gather(boxes, 1, query[..., None].expand(-1, -1, 4)))
        results = []
        for i, (h, w) in enumerate(image_sizes):
            r = Instances((h, w))
            scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
            r.pred_boxes = Boxes(boxes[i] * scale)
            r.pred_boxes.clip((h, w))
            r.scores = scores[i]
            r.pred_classes = labels[i]
            height = batched_inputs[i].get("height", h)
            width = batched_inputs[i].get("width", w)
            results.append({"instances": detector_postprocess(r, height, width)})
        return results


def downsample_mask(mask: Tensor, size: Tuple[int, int]) -> Tensor:
    """``[B, H, W]`` bool padding mask -> ``[B, h, w]`` (nearest)."""
    return F.interpolate(mask[None].float(), size=size)[0].to(torch.bool)
