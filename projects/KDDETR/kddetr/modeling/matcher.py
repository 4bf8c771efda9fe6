"""Hungarian matching of predictions to ground truth (scipy's ``linear_sum_assignment``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from ..errors import NonFiniteError
from .layers.box_ops import cxcywh_to_xyxy, generalized_box_iou
from .layers.precision import full_precision
from .layers.transfer import to_device
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
    # scipy's answer, on the host; moved to the device once for all images (assignments_to)
    return tuple(torch.as_tensor(i, dtype=torch.int64, device="cpu") for i in (rows, cols))


class NonFiniteCost(NonFiniteError):
    """A matching cost holds NaN or inf (from non-finite predictions). Its ``cost``: the matrix; ``sets``: with
    :meth:`HungarianMatcher.match_many`, the indices of the prediction sets whose costs are not finite, with
    each one's message."""

    def __init__(self, message: str, cost, sets: Optional[Dict[int, str]] = None):
        super().__init__(message)
        self.cost, self.sets = cost, sets or {}


def assignment_to(assignment: Sequence[Tuple[Tensor, Tensor]], device: torch.device) -> Assignment:
    """Per-image ``(rows, cols)`` CPU index tensors -> the same on ``device``, with one pinned,
    non-blocking host-to-device copy for all images (the losses then index on the device without
    a copy per image)."""
    return assignments_to([assignment], device)[0]


def assignments_to(assignments: Sequence[Assignment], device: torch.device) -> List[Assignment]:
    """Several assignments (e.g. one per decoder layer) to ``device`` with one pinned, non-blocking copy."""
    device = torch.device(device)
    if device.type == "cpu" or not any(assignments):
        return [list(a) for a in assignments]
    pairs = [p for a in assignments for p in a]
    sizes = [len(r) for r, _ in pairs]
    flat = torch.cat([r for r, _ in pairs] + [c for _, c in pairs])
    rows, cols = to_device(flat, device).split([sum(sizes), sum(sizes)])
    moved = list(zip(rows.split(sizes), cols.split(sizes)))
    out, start = [], 0
    for a in assignments:
        out.append(moved[start:start + len(a)])
        start += len(a)
    return out


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
        return self.match_many([(logits, boxes)], targets)[0]

    @torch.no_grad()
    def match_many(self, predictions: Sequence[Tuple[Tensor, Tensor]], targets: Targets) -> List[Assignment]:
        """The assignments of several sets of predictions to the same targets (e.g. every decoder layer and the
        encoder's proposals), with one device-to-host copy of all their costs (scipy runs on the CPU; each
        copy drains the device's queue) and one non-blocking copy of all the assignments back.

        Args:
            predictions: ``(logits [B, Q_i, K], boxes [B, Q_i, 4])`` per set, the same ``B``.

        Returns:
            one assignment per set, as :meth:`forward`'s. Raises :class:`NonFiniteCost` naming every set
            whose costs are not finite (``sets``) after trying them all.
        """
        device = predictions[0][0].device
        sizes = [len(t["labels"]) for t in targets]
        if sum(sizes) == 0:
            empty = torch.empty(0, dtype=torch.int64, device=device)
            return [[(empty, empty) for _ in range(logits.shape[0])] for logits, _ in predictions]
        labels = torch.cat([t["labels"] for t in targets])
        gt_boxes = torch.cat([t["boxes"] for t in targets])
        costs = [self.cost_matrix(logits.flatten(0, 1), boxes.flatten(0, 1), labels, gt_boxes)
                 .view(logits.shape[0], logits.shape[1], -1) for logits, boxes in predictions]
        host = torch.cat([c.flatten() for c in costs]).cpu()  # the one device->host copy
        out, bad = [], {}
        for i, (flat, cost) in enumerate(zip(host.split([c.numel() for c in costs]), costs)):
            try:
                per_image = flat.view(cost.shape).split(sizes, -1)
                out.append([hungarian(c[b]) for b, c in enumerate(per_image)])
            except NonFiniteCost as e:
                bad[i] = str(e)
        if bad:
            first = next(iter(bad))
            raise NonFiniteCost(bad[first], None, bad)
        return assignments_to(out, device)
