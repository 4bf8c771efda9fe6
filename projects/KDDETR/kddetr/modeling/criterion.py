"""Set criterion of the DETR family: focal (or RT-DETR's varifocal) classification, L1 and GIoU box losses."""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from detectron2.utils import comm
from torch import Tensor, nn
from torchvision.ops import box_iou, sigmoid_focal_loss

from .denoising import DenoisingMeta
from .layers.box_ops import cxcywh_to_xyxy, generalized_box_iou_loss
from .matcher import HungarianMatcher, NonFiniteCost
from .seam import DecoderOutput, Targets

logger = logging.getLogger(__name__)


def layer_suffix(suffix: str, layer: int, num_layers: int) -> str:
    """Key suffix of a decoder layer: none for the last layer, ``_{i}`` for auxiliary ones."""
    return suffix if layer == num_layers - 1 else f"{suffix}_{layer}"


class SetCriterion(nn.Module):
    """Losses of a DETR with sigmoid classification.

    Keys: ``loss_class``, ``loss_bbox``, ``loss_giou`` for the last decoder layer; ``_{i}``
    suffixes for auxiliary layer i; ``_enc`` for two-stage proposals; ``_dn`` (and
    ``_dn_{i}``) for denoising groups. Every value is already multiplied by its weight.

    Normalisation: each term is summed over matched boxes (focal: over all queries and
    classes) and divided by the number of ground-truth boxes in the global batch (times
    the number of denoising groups for the ``_dn`` terms).

    Args:
        num_classes: K.
        matcher: :class:`HungarianMatcher`.
        weight_dict: weights of ``loss_class``, ``loss_bbox``, ``loss_giou`` (DINO: 1, 5, 2);
            the same weights apply to the auxiliary, encoder and denoising terms.
        alpha, gamma: focal loss parameters (varifocal: RT-DETR's 0.75, 2).
        class_loss: ``"focal"`` (sigmoid focal loss against one-hot targets) or ``"varifocal"`` (RT-DETR:
            BCE against the matched box's IoU with its ground truth at the true class, 0 elsewhere, each
            term weighted by that target where it is positive and by ``alpha * p^gamma`` where it is 0).
    """

    CLASS_LOSSES = ("focal", "varifocal")

    def __init__(self, num_classes: int, matcher: HungarianMatcher,
                 weight_dict: Optional[Dict[str, float]] = None, alpha: float = 0.25, gamma: float = 2.0,
                 class_loss: str = "focal"):
        super().__init__()
        if class_loss not in self.CLASS_LOSSES:
            raise ValueError(f"SetCriterion.class_loss must be one of {self.CLASS_LOSSES}, got '{class_loss}'")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict or {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0})
        self.alpha, self.gamma, self.class_loss = alpha, gamma, class_loss

    def num_boxes(self, targets: Targets, device: torch.device) -> Tensor:
        """Global number of boxes as a tensor (no host sync), at least 1."""
        n = torch.full((), float(sum(len(t["labels"]) for t in targets)), device=device)  # a fill: no copy
        if comm.get_world_size() > 1:
            dist.all_reduce(n)
            n = n / comm.get_world_size()
        return n.clamp(min=1.0)

    def matched_losses(self, logits: Tensor, boxes: Tensor, targets: Targets,
                       indices: List[Tuple[Tensor, Tensor]], num_boxes: Tensor) -> Dict[str, Tensor]:
        """``logits`` ``[B, Q, K]``, ``boxes`` ``[B, Q, 4]`` against targets under ``indices``."""
        device = logits.device
        batch_idx = torch.cat([torch.full_like(q, i) for i, (q, _) in enumerate(indices)]).to(device)
        query_idx = torch.cat([q for q, _ in indices]).to(device)
        gt_labels = torch.cat([t["labels"][j.to(device)] for t, (_, j) in zip(targets, indices)])
        gt_boxes = torch.cat([t["boxes"][j.to(device)] for t, (_, j) in zip(targets, indices)])

        src = boxes[batch_idx, query_idx]
        onehot = torch.zeros_like(logits)
        if self.class_loss == "focal":
            onehot[batch_idx, query_idx, gt_labels] = 1.0
            loss_class = sigmoid_focal_loss(logits, onehot, self.alpha, self.gamma, reduction="sum") / num_boxes
        else:
            iou = box_iou(cxcywh_to_xyxy(src.detach()), cxcywh_to_xyxy(gt_boxes)).diagonal()
            onehot[batch_idx, query_idx, gt_labels] = 1.0
            score = torch.zeros_like(logits)
            score[batch_idx, query_idx, gt_labels] = iou.to(score.dtype)  # the IoU-aware target
            weight = self.alpha * logits.detach().sigmoid().pow(self.gamma) * (1 - onehot) + score
            loss_class = F.binary_cross_entropy_with_logits(logits, score, weight=weight, reduction="sum") / num_boxes
        loss_bbox = (src - gt_boxes).abs().sum() / num_boxes
        loss_giou = generalized_box_iou_loss(cxcywh_to_xyxy(src), cxcywh_to_xyxy(gt_boxes), reduction="sum") / num_boxes
        w = self.weight_dict
        return {
            "loss_class": loss_class * w["loss_class"],
            "loss_bbox": loss_bbox * w["loss_bbox"],
            "loss_giou": loss_giou * w["loss_giou"],
        }

    def match(self, predictions: Sequence[Tuple[Tensor, Tensor]], targets: Targets, keys: Sequence[str]
              ) -> List[List[Tuple[Tensor, Tensor]]]:
        """The matcher's assignments of several sets of predictions (every decoder layer, the encoder's
        proposals) at once: one copy of their costs to the host (:meth:`HungarianMatcher.match_many`).
        Non-finite predictions (a non-finite matching cost) are named with the matcher and the set (by its loss
        key, ``keys``) in the log, and matched with their costs made finite: the loss terms they give are
        non-finite too, so the trainer's check, reduced over the processes, stops every process at this step,
        before the optimizer step."""
        try:
            return self.matcher.match_many(predictions, targets)
        except NonFiniteCost as e:
            for i, message in e.sets.items():
                logger.warning(f"{type(self.matcher).__name__}: the {message} of {keys[i]}, from non-finite "
                               "predictions; the step's loss is non-finite and training stops before the optimizer "
                               "step")
            return self.matcher.match_many([(torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0),
                                             torch.nan_to_num(boxes, nan=0.5, posinf=0.5, neginf=0.5))
                                            for logits, boxes in predictions], targets)

    def layer_losses(self, output: DecoderOutput, targets: Targets, num_boxes: Tensor,
                     indices: Optional[List[Tuple[Tensor, Tensor]]] = None, suffix: str = "",
                     matched: Optional[List[List[Tuple[Tensor, Tensor]]]] = None) -> Dict[str, Tensor]:
        """Losses of every decoder layer; ``indices`` fixed for every layer (denoising), ``matched`` one
        assignment per layer, or else every layer matched here (one copy to the host for all)."""
        L = output.logits.shape[0]
        tags = [layer_suffix(suffix, layer, L) for layer in range(L)]
        if indices is not None:
            matched = [indices] * L
        elif matched is None:
            matched = self.match([(output.logits[i], output.boxes[i]) for i in range(L)], targets,
                                 [f"loss_class{tag}" for tag in tags])
        losses = {}
        for layer, (tag, idx) in enumerate(zip(tags, matched)):
            logits, boxes = output.logits[layer], output.boxes[layer]
            losses.update({k + tag: v for k, v in self.matched_losses(logits, boxes, targets, idx, num_boxes).items()})
        return losses

    def forward(self, det: DecoderOutput, targets: Targets, enc: Optional[Dict[str, Tensor]] = None,
                dn: Optional[Tuple[DecoderOutput, DenoisingMeta]] = None,
                dn_placeholder: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """
        Args:
            det: decoder output of the detection queries.
            targets: per image ``{"labels": [T], "boxes": [T, 4] cxcywh in [0, 1]}``.
            enc: two-stage proposals ``{"logits": [B, N, K], "boxes": [B, N, 4]}``.
            dn: decoder output of the denoising group and its layout.
            dn_placeholder: a zero-valued tensor that keeps the ``_dn`` keys (and the
                denoising parameters in the graph) when a batch has no boxes to noise.
        """
        num_boxes = self.num_boxes(targets, det.logits.device)
        # every decoder layer and the encoder's proposals matched together: one copy of the costs to the host
        L = det.logits.shape[0]
        sets = [(det.logits[i], det.boxes[i]) for i in range(L)] + ([(enc["logits"], enc["boxes"])] if enc else [])
        keys = [f"loss_class{layer_suffix('', i, L)}" for i in range(L)] + ["loss_class_enc"]
        matched = self.match(sets, targets, keys)
        losses = self.layer_losses(det, targets, num_boxes, matched=matched[:L])
        if enc:
            losses.update({k + "_enc": v for k, v in
                           self.matched_losses(enc["logits"], enc["boxes"], targets, matched[L], num_boxes).items()})
        if dn is not None:
            dn_out, meta = dn
            losses.update(self.layer_losses(dn_out, targets, num_boxes * meta.num_groups,
                                            indices=meta.positive_indices(targets), suffix="_dn"))
        elif dn_placeholder is not None:
            L = det.logits.shape[0]
            for layer in range(L):
                for k in self.weight_dict:
                    losses[k + layer_suffix("_dn", layer, L)] = dn_placeholder
        return losses
