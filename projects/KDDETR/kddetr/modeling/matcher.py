"""Hungarian matching of predictions to ground truth (scipy's ``linear_sum_assignment``)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from ..errors import NonFiniteError
from .layers.box_ops import cxcywh_to_xyxy, generalized_box_iou
from .layers.precision import full_precision
from .seam import Assignment, Targets


def hungarian(cost: Tensor) -> Tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment of a ``[P, T]`` cost matrix on the CPU (scipy's
    ``linear_sum_assignment``; rectangular matrices assign ``min(P, T)`` pairs). Returns int64
    ``(rows, cols)``. A non-finite cost (from non-finite predictions) raises :class:`NonFiniteCost` before
    scipy's bare refusal (the costs are on the host already: no extra sync)."""
    cost = cost.numpy()
    if not np.isfinite(cost).all():
        raise NonFiniteCost(f"{cost.shape[0]} x {cost.shape[1]} cost matrix holds {int((~np.isfinite(cost)).sum())} "
                            "non-finite values (NaN or inf)", cost)
    rows, cols = linear_sum_assignment(cost)
    cpu = torch.device("cpu")  # scipy's answer, moved to the device once for all images (assignment_to)
    return torch.as_tensor(rows, dtype=torch.int64, device=cpu), torch.as_tensor(cols, dtype=torch.int64, device=cpu)


class NonFiniteCost(NonFiniteError):
    """A matching cost holds NaN or inf (from non-finite predictions). Its ``cost``: the matrix."""

    def __init__(self, message: str, cost):
        super().__init__(message)
        self.cost = cost


def assignment_to(assignment: Sequence[Tuple[Tensor, Tensor]], device: torch.device) -> Assignment:
    """Per-image ``(rows, cols)`` CPU index tensors -> the same on ``device``, with one pinned,
    non-blocking host-to-device copy for all images (the losses then index on the device without
    a copy per image)."""
    device = torch.device(device)
    if device.type == "cpu" or not assignment:
        return list(assignment)
    sizes = [len(r) for r, _ in assignment]
    flat = torch.cat([r for r, _ in assignment] + [c for _, c in assignment])
    rows, cols = flat.pin_memory().to(device, non_blocking=True).split([sum(sizes), sum(sizes)])
    return list(zip(rows.split(sizes), cols.split(sizes)))


def focal_class_cost(logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Focal-loss matching cost (Deformable DETR / DINO). ``[P, K]`` logits, ``[T]`` labels -> ``[P, T]``."""
    prob = logits.sigmoid()
    neg = (1 - alpha) * prob.pow(gamma) * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob).pow(gamma) * -(prob + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising ``cost_class * focal + cost_bbox * L1 + cost_giou * (-GIoU)``.

    Args:
        cost_class, cost_bbox, cost_giou: cost weights (DINO: 2, 5, 2).
        alpha, gamma: focal cost parameters.
    """

    def __init__(self, cost_class: float = 2.0, cost_bbox: float = 5.0, cost_giou: float = 2.0,
                 alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou
        self.alpha, self.gamma = alpha, gamma

    @torch.no_grad()
    @full_precision
    def cost_matrix(self, logits: Tensor, boxes: Tensor, labels: Tensor, gt_boxes: Tensor) -> Tensor:
        """``[P, K]``, ``[P, 4]`` predictions against ``[T]``, ``[T, 4]`` targets -> ``[P, T]``."""
        c_cls = focal_class_cost(logits.float(), labels, self.alpha, self.gamma)
        c_l1 = torch.cdist(boxes.float(), gt_boxes.float(), p=1)
        c_giou = -generalized_box_iou(cxcywh_to_xyxy(boxes.float()), cxcywh_to_xyxy(gt_boxes.float()))
        return self.cost_class * c_cls + self.cost_bbox * c_l1 + self.cost_giou * c_giou

    @torch.no_grad()
    def forward(self, logits: Tensor, boxes: Tensor, targets: Targets) -> Assignment:
        """
        Args:
            logits: ``[B, Q, K]``; boxes: ``[B, Q, 4]`` cxcywh in [0, 1].
            targets: per image ``{"labels": [T_i], "boxes": [T_i, 4] cxcywh in [0, 1]}``.

        Returns:
            per image ``(query_index, target_index)`` int64 tensors of equal length, on the device of
            ``logits``.
        """
        B, Q = logits.shape[:2]
        sizes = [len(t["labels"]) for t in targets]
        if sum(sizes) == 0:
            empty = torch.empty(0, dtype=torch.int64, device=logits.device)
            return [(empty, empty) for _ in range(B)]
        labels = torch.cat([t["labels"] for t in targets])
        gt_boxes = torch.cat([t["boxes"] for t in targets])
        cost = self.cost_matrix(logits.flatten(0, 1), boxes.flatten(0, 1), labels, gt_boxes)
        # One device->host copy for the whole batch: scipy needs the costs on the CPU; one copy back.
        cost = cost.view(B, Q, -1).cpu()
        return assignment_to([hungarian(c[i]) for i, c in enumerate(cost.split(sizes, -1))], logits.device)
