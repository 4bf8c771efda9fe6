"""The KD-DETR distillation loss (paper Eq. 3-5)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..modeling.criterion import layer_suffix
from ..modeling.layers.box_ops import cxcywh_to_xyxy, generalized_box_iou_loss
from .points import PointPairs


class KDDETRLoss(nn.Module):
    """Logit mimicking on distillation points, weighted by the teacher's foreground probability.

    For a point i with teacher logits ``t`` and student logits ``s`` (``[K]``, sigmoid-trained):

    * weight ``w_i = max_k sigmoid(t_k)`` (detached; 1 when ``foreground_weight=False``),
    * class term ``KL(softmax(t / T) || softmax(s / T))`` averaged over the K classes, times T^2,
    * box terms L1 (mean over the 4 cxcywh coordinates) and GIoU against the teacher's box.

    Normalisation (as the authors' code): the class term is ``sum_i w_i * KL_i`` over the
    points of an image, averaged over the images of the batch; the box terms are
    ``sum_i w_i * l_i / sum_i w_i`` over the whole batch. Every distilled student decoder layer
    is compared with the teacher's *last* layer.

    Keys: ``loss_kd_cls``, ``loss_kd_l1``, ``loss_kd_giou`` for the student's last layer and
    ``_{i}`` suffixes for auxiliary layer i (the detection losses' convention), summed over the
    point sets, each multiplied by its weight.

    Args:
        temperature: T (authors: 10).
        weights: ``cls``, ``l1``, ``giou`` (paper: 1, 5, 2).
        layers: ``"all"`` student decoder layers or only the ``"last"``.
        foreground_weight: weight each point by the teacher's max class probability (Table 5).
    """

    def __init__(self, temperature: float = 10.0, weights: Optional[Dict[str, float]] = None, layers: str = "all",
                 foreground_weight: bool = True):
        super().__init__()
        if layers not in ("all", "last"):
            raise ValueError(f"KDDETRLoss.layers must be 'all' or 'last', got '{layers}'")
        self.temperature = temperature
        self.weights = dict(weights or {"cls": 1.0, "l1": 5.0, "giou": 2.0})
        self.layers, self.foreground_weight = layers, foreground_weight

    def point_weights(self, t_logits: Tensor, valid: Optional[Tensor]) -> Tensor:
        """``[B, N]`` foreground weights (0 on invalid points)."""
        w = t_logits.detach().float().sigmoid().max(-1)[0] if self.foreground_weight else \
            torch.ones(t_logits.shape[:2], device=t_logits.device)
        return w if valid is None else w * valid

    def terms(self, s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor, w: Tensor
              ) -> Dict[str, Tensor]:
        """Unweighted terms of one student layer: ``s_*`` and ``t_*`` ``[B, N, .]``, ``w`` ``[B, N]``."""
        T = self.temperature
        log_p_s = F.log_softmax(s_logits.float() / T, -1)
        log_p_t = F.log_softmax(t_logits.detach().float() / T, -1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).mean(-1) * T * T  # [B, N]
        B = s_logits.shape[0]
        w_sum = w.sum().clamp(min=1e-6)
        t_boxes = t_boxes.detach().float()
        l1 = (s_boxes.float() - t_boxes).abs().mean(-1)
        giou = generalized_box_iou_loss(cxcywh_to_xyxy(s_boxes.float()).flatten(0, 1),
                                        cxcywh_to_xyxy(t_boxes).flatten(0, 1), reduction="none").view_as(w)
        return {"cls": (w * kl).sum() / B, "l1": (w * l1).sum() / w_sum, "giou": (w * giou).sum() / w_sum}

    def forward(self, pairs: Sequence[PointPairs]) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        for p in pairs:
            w = self.point_weights(p.t_logits, p.valid)
            L = p.s_logits.shape[0]
            layers = range(L) if self.layers == "all" else [L - 1]
            for layer in layers:
                tag = layer_suffix("", layer, L)
                for name, value in self.terms(p.s_logits[layer], p.s_boxes[layer], p.t_logits, p.t_boxes, w).items():
                    key = f"loss_kd_{name}{tag}"
                    value = value * self.weights[name]
                    losses[key] = losses[key] + value if key in losses else value
        return losses

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, weights={self.weights}, layers={self.layers}, "
                f"foreground_weight={self.foreground_weight}")
