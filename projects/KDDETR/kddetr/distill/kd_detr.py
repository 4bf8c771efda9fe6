"""KD-DETR as a distiller (:class:`KDDETRDistiller`: its point sets and their loss) and its losses on paired
predictions: :class:`KDDETRLoss` (paper Eq. 3-5, the method) and :class:`BaselineKDLoss` (the paper's Table 1
baselines), both as the authors' code computes them."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..modeling.criterion import layer_suffix
from ..modeling.groups import DETECTION
from ..modeling.layers.box_ops import cxcywh_to_xyxy, generalized_box_iou_loss
from ..modeling.seam import Queries, QueryGroup
from .detrdistill import soft_bce, stage_map
from .interface import DistillStep, TeacherStep
from .points import DistillPoints, PointPairs

#: ``KDDETRLoss.normalization`` values: the class term divided by the images of the process (default: the same
#: loss whatever the batch layout), or the authors' sum over every point of every image of the process.
NORMALIZATIONS = ("per_image", "authors")
#: ``class_term`` values: the authors' KL of softmax distributions over the classes, or a binary KL per class on
#: the sigmoid scores the detectors are trained with (sees the teacher's confidence; works for one class).
CLASS_TERMS = ("softmax", "sigmoid")
#: Images per process of KD-DETR's runs (16 on 8 GPUs). The authors' class term is summed over them, so the
#: per-image term at weight ``AUTHORS_IMAGES_PER_PROCESS`` is their loss exactly at their layout.
AUTHORS_IMAGES_PER_PROCESS = 2
#: ``class_term`` -> (temperature, class weight per image) used when a config leaves them unset (None). Sigmoid:
#: T 1 at weight 0.5, the default, which beat the softmax term on DINO and Deformable DETR, 3 seeds each
#: (docs/RESULTS.md, "The class term per image, by default"). Softmax: the authors' T 10 at weight
#: ``AUTHORS_IMAGES_PER_PROCESS``, their loss exactly at their layout. With ``normalization="authors"`` the weight
#: is divided by ``AUTHORS_IMAGES_PER_PROCESS`` (softmax: their weight 1 on their sum).
CLASS_TERM_DEFAULTS = {"sigmoid": (1.0, 0.5), "softmax": (10.0, float(AUTHORS_IMAGES_PER_PROCESS))}


def kl_per_point(s_logits: Tensor, t_logits: Tensor, temperature: float) -> Tensor:
    """``KL(softmax(t / T) || softmax(s / T))`` averaged over the K classes, times ``T^2``.

    Args:
        s_logits: ``[..., K]`` the student's logits (gradients flow).
        t_logits: ``[..., K]`` the teacher's logits (detached here).

    Returns:
        ``[...]`` one value per point, in float32.
    """
    T = temperature
    log_p_s = F.log_softmax(s_logits.float() / T, -1)
    log_p_t = F.log_softmax(t_logits.detach().float() / T, -1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).mean(-1) * (T * T)


def binary_kl_per_point(s_logits: Tensor, t_logits: Tensor, temperature: float) -> Tensor:
    """``sum_k KL(Bernoulli(sigmoid(t_k / T)) || Bernoulli(sigmoid(s_k / T)))`` times ``T^2`` (DETRDistill's
    soft BCE minus the targets' entropy, per class, at temperature T): each class is the binary problem the
    detectors' focal loss trains, so the teacher's confidence that anything is there at all is carried (a
    softmax over the classes cannot see it), and one class works. ``[..., K]`` logits (the teacher's
    detached) -> ``[...]`` one value per point, in float32."""
    T = temperature
    return soft_bce(s_logits.float() / T, t_logits.detach().float() / T).sum(-1) * (T * T)


#: the per-point class divergence of each ``class_term``
CLASS_DIVERGENCES = {"softmax": kl_per_point, "sigmoid": binary_kl_per_point}


SIGMOID_FIX = ("Set model.loss.class_term=sigmoid (the default: a binary KL per class on the sigmoid scores, "
               "which works for one class).")


def check_class_term(owner: str, class_term: str, num_classes: int, fix: str = SIGMOID_FIX) -> None:
    """Refuse a class term that is zero by construction: a softmax over one class is 1 whatever the
    logits, so its KL never moves the student."""
    if class_term == "softmax" and num_classes < 2:
        raise ConfigError(
            f"{owner}: the softmax class term compares distributions over the classes, and with "
            f"{num_classes} class it is 0 whatever the logits: the student would learn nothing from the "
            f"teacher's classes. {fix}")


def _distilled_layers(mode: str, num_layers: int) -> List[int]:
    return list(range(num_layers)) if mode == "all" else [num_layers - 1]


def _check_layers(owner: str, layers: str) -> None:
    if layers not in ("all", "last"):
        raise ValueError(f"{owner}.layers must be 'all' or 'last', got '{layers}'")


class KDDETRLoss(nn.Module):
    """Logit mimicking on distillation points, weighted by the teacher's foreground probability
    (the authors' ``KDCriterion`` for the ``auxrf`` / ``randomrf`` point sets).

    For one point set, student decoder layer ``l`` and the teacher's *last* layer, with points
    ``i`` over all ``B`` images of the process (``[B, N]`` flattened), teacher logits ``t_i`` and student
    logits ``s_i`` (``[K]``, sigmoid-trained), boxes ``b^t_i`` and ``b^s_i`` (cxcywh):

    * ``w_i = max_k sigmoid(t_ik)``, detached (1 when ``foreground_weight=False``; 0 on invalid points),
    * ``D_i``: ``class_term="sigmoid"`` (default) ``T^2 * sum_k KL(Bern(q^t_ik) || Bern(q^s_ik))`` with
      ``q = sigmoid(logits / T)``; ``"softmax"`` (the authors') ``T^2 / K * sum_k p^t_ik (log p^t_ik - log
      p^s_ik)`` with ``p = softmax(logits / T)``,
    * class term ``sum_i w_i D_i / B`` (``normalization="per_image"``, default) or ``sum_i w_i D_i``
      (``"authors"``: summed over all points of all images of the process, no division),
    * L1 term ``sum_i w_i |b^s_i - b^t_i|_1 / 4 / sum_i w_i`` (mean over the 4 coordinates),
    * GIoU term ``sum_i w_i (1 - GIoU(b^s_i, b^t_i)) / sum_i w_i``.

    Batch layout: DDP averages the processes' gradients, so the authors' sum weighs ``B`` times more on
    a process of ``B`` images (8 GPUs x 2 images, 4 x 4 and 1 x 8 train differently). The per-image term
    does not depend on the layout. With ``class_term="softmax"`` its default weight is
    ``AUTHORS_IMAGES_PER_PROCESS`` (2) and its temperature 10: the authors' loss exactly at their layout (16
    images on 8 GPUs), and the same on any other (``tests/test_kd_loss.py``). ``normalization="authors"``
    keeps their sum at any layout.

    The class term's softmax over the classes of sigmoid-trained logits cannot see how sure the teacher is
    that anything is there (the logits' common level), and is 0 for one class; the sigmoid term sees both
    and trained better students (``CLASS_TERM_DEFAULTS``), so it is the default.

    Every distilled student layer is compared with the teacher's last layer (``PointPairs.t_*[-1]``).

    Keys: ``loss_kd_cls``, ``loss_kd_l1``, ``loss_kd_giou`` for the student's last layer and
    ``_{i}`` suffixes for auxiliary layer i (the detection losses' convention), summed over the
    point sets, each multiplied by its weight.

    Args:
        temperature: T; None: the class term's default (``CLASS_TERM_DEFAULTS``: sigmoid 1, softmax 10).
        weights: ``cls``, ``l1``, ``giou`` (default: the class term's ``cls``, 5, 2; softmax per image:
            2, 5, 2, the authors' 1, 5, 2 with their class sum over 2 images per process). A missing or None
            ``cls`` is the class term's default.
        layers: ``"all"`` student decoder layers or only the ``"last"``.
        foreground_weight: weight each point by the teacher's max class probability (Table 5).
        normalization: ``"per_image"`` (default) or ``"authors"``.
        class_term: ``"sigmoid"`` (default) or ``"softmax"`` (the authors').
    """

    def __init__(self, temperature: Optional[float] = None, weights: Optional[Dict[str, Optional[float]]] = None,
                 layers: str = "all", foreground_weight: bool = True, normalization: str = "per_image",
                 class_term: str = "sigmoid"):
        super().__init__()
        _check_layers("KDDETRLoss", layers)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"KDDETRLoss.normalization must be one of {NORMALIZATIONS}, got '{normalization}'")
        if class_term not in CLASS_TERMS:
            raise ValueError(f"KDDETRLoss.class_term must be one of {CLASS_TERMS}, got '{class_term}'")
        default_t, default_cls = CLASS_TERM_DEFAULTS[class_term]
        if normalization == "authors":
            default_cls /= AUTHORS_IMAGES_PER_PROCESS
        self.temperature = default_t if temperature is None else temperature
        self.weights = {"cls": None, "l1": 5.0, "giou": 2.0, **(weights or {})}
        if self.weights.get("cls") is None:
            self.weights["cls"] = default_cls
        self.layers, self.foreground_weight, self.normalization = layers, foreground_weight, normalization
        self.class_term = class_term

    def check_num_classes(self, num_classes: int) -> None:
        """Refuse a class term that is zero by construction for ``num_classes``."""
        check_class_term("KDDETRLoss", self.class_term, num_classes)

    def point_weights(self, t_logits: Tensor, valid: Optional[Tensor]) -> Tensor:
        """``[B, N]`` foreground weights of the teacher's ``[B, N, K]`` logits (0 on invalid points)."""
        w = t_logits.detach().float().sigmoid().max(-1)[0] if self.foreground_weight else \
            torch.ones(t_logits.shape[:2], device=t_logits.device)
        return w if valid is None else w * valid

    def terms(self, s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor, w: Tensor
              ) -> Dict[str, Tensor]:
        """Unweighted terms of one student layer: ``s_*`` and ``t_*`` ``[B, N, .]``, ``w`` ``[B, N]``."""
        div = CLASS_DIVERGENCES[self.class_term](s_logits, t_logits, self.temperature)  # [B, N]
        cls = (w * div).sum()
        if self.normalization == "per_image":
            cls = cls / s_logits.shape[0]
        w_sum = w.sum().clamp(min=1e-6)
        t_boxes = t_boxes.detach().float()
        l1 = (s_boxes.float() - t_boxes).abs().mean(-1)
        giou = generalized_box_iou_loss(cxcywh_to_xyxy(s_boxes.float()).flatten(0, 1),
                                        cxcywh_to_xyxy(t_boxes).flatten(0, 1), reduction="none").view_as(w)
        return {"cls": cls, "l1": (w * l1).sum() / w_sum, "giou": (w * giou).sum() / w_sum}

    def forward(self, pairs: Sequence[PointPairs]) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        for p in pairs:
            t_logits, t_boxes = p.t_logits[-1], p.t_boxes[-1]
            w = self.point_weights(t_logits, p.valid)
            L = p.s_logits.shape[0]
            for layer in _distilled_layers(self.layers, L):
                tag = layer_suffix("", layer, L)
                for name, value in self.terms(p.s_logits[layer], p.s_boxes[layer], t_logits, t_boxes, w).items():
                    key = f"loss_kd_{name}{tag}"
                    value = value * self.weights[name]
                    losses[key] = losses[key] + value if key in losses else value
        return losses

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, weights={self.weights}, layers={self.layers}, "
                f"foreground_weight={self.foreground_weight}, normalization={self.normalization}, "
                f"class_term={self.class_term}")


class BaselineKDLoss(nn.Module):
    """Loss of KD-DETR's Table 1 baselines (:class:`~kddetr.distill.points.Inconsistent`,
    :class:`~kddetr.distill.points.SimilarForeground`, :class:`~kddetr.distill.points.SimilarGeneral`):
    the authors' plain logit distillation, student decoder layer against teacher decoder layer.

    For one point set, student layer ``l`` paired with teacher layer ``m = stage_map(L_s, L_t)[l]``,
    and the ``n`` valid points ``i`` of the whole batch (all ``B * N`` without a mask):

    * class term ``(1 / n) sum_i KL_i`` with ``KL_i = T^2 / K * sum_k p^t_ik (log p^t_ik - log p^s_ik)``,
      ``p = softmax(logits / T)``: unweighted (no foreground weight) and *averaged* over the points
      (the authors reduce it with ``.mean()`` over the flattened points),
    * box term ``(1 / 4n) sum_i sum_c smooth_l1_beta(b^s_ic - b^t_ic)`` (cxcywh, ``beta = 1/9``,
      averaged over points and coordinates like ``nn.SmoothL1Loss``); no GIoU,
    * 0 when no point is valid (a batch without ground truth for the Similar baselines).

    Layer pairing: equal depths pair layer ``l`` with layer ``l`` (the authors' code, whose
    baselines have equal depths); for other depths :func:`~kddetr.distill.detrdistill.stage_map`
    (as DETRDistill): the last layers always meet and a shallower student skips teacher layers
    evenly (6 -> 2: teacher layers ``[2, 5]``). The authors' code ``zip``\\ s the auxiliary layers,
    which for unequal depths would pair only the first ``min(L_s, L_t) - 1`` and drop the rest;
    that is not reproduced.

    Keys: ``loss_kd_cls``, ``loss_kd_l1`` for the student's last layer and ``_{i}`` for auxiliary
    layer i, summed over the point sets, each multiplied by its weight.

    Args:
        temperature: T (authors: 10).
        weights: ``cls``, ``l1`` (authors: 10, 1).
        beta: smooth L1 transition point (authors: 1/9).
        layers: ``"all"`` student decoder layers (authors) or only the ``"last"``.
    """

    def __init__(self, temperature: float = 10.0, weights: Optional[Dict[str, float]] = None, beta: float = 1.0 / 9.0,
                 layers: str = "all"):
        super().__init__()
        _check_layers("BaselineKDLoss", layers)
        self.temperature, self.beta, self.layers = temperature, beta, layers
        self.weights = dict(weights or {"cls": 10.0, "l1": 1.0})

    def check_num_classes(self, num_classes: int) -> None:
        """Refuse the softmax class term on one class (zero by construction)."""
        check_class_term("BaselineKDLoss", "softmax", num_classes,
                         fix="The Table 1 baselines are defined with it; on one class use KD-DETR's loss "
                         "(kd_loss() in configs/common/kd_detr.py: its default class_term=sigmoid works on one class).")

    def terms(self, s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor, valid: Optional[Tensor]
              ) -> Dict[str, Tensor]:
        """Unweighted terms of one student layer and its teacher layer: ``s_*``, ``t_*`` ``[B, N, .]``,
        ``valid`` ``[B, N]`` bool or None."""
        kl = kl_per_point(s_logits, t_logits, self.temperature)  # [B, N]
        l1 = F.smooth_l1_loss(s_boxes.float(), t_boxes.detach().float(), reduction="none", beta=self.beta).mean(-1)
        if valid is None:
            return {"cls": kl.mean(), "l1": l1.mean()}
        n = valid.sum().clamp(min=1)
        return {"cls": (kl * valid).sum() / n, "l1": (l1 * valid).sum() / n}

    def forward(self, pairs: Sequence[PointPairs]) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        for p in pairs:
            L = p.s_logits.shape[0]
            stages = stage_map(L, p.t_logits.shape[0])
            for layer in _distilled_layers(self.layers, L):
                tag = layer_suffix("", layer, L)
                m = stages[layer]
                terms = self.terms(p.s_logits[layer], p.s_boxes[layer], p.t_logits[m], p.t_boxes[m], p.valid)
                for name, value in terms.items():
                    key = f"loss_kd_{name}{tag}"
                    value = value * self.weights[name]
                    losses[key] = losses[key] + value if key in losses else value
        return losses

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, weights={self.weights}, beta={self.beta:.4g}, layers={self.layers}"


class KDDETRDistiller(nn.Module):
    """KD-DETR as a :class:`~kddetr.distill.interface.Distiller`: the teacher decodes every point set
    (:mod:`kddetr.distill.points`: general points, its own queries, or a Table 1 baseline's), the student
    decodes the shared ones at the teacher's positions in its fused pass (a baseline's pair the student's
    own detection queries instead), and ``loss`` compares the pairs.

    ``KDDETR`` builds it from ``model.points`` and ``model.loss``; its keys in the log are ``loss_kd_*``.
    """

    name = "kd_detr"

    def __init__(self, points: Sequence[DistillPoints], loss: nn.Module):
        super().__init__()
        names = [p.name for p in points]
        if len(set(names)) != len(names):
            raise ConfigError(f"KDDETR: distillation point sets need distinct names, got {names}")
        self.points, self.loss = nn.ModuleList(points), loss

    @property
    def shares_queries(self) -> bool:
        return any(p.shared for p in self.points)

    def check_num_classes(self, num_classes: int) -> None:
        self.loss.check_num_classes(num_classes)  # a class term that is zero by construction

    def bind(self, teacher: nn.Module, student: nn.Module) -> None:
        for p in self.points:
            p.bind(student.query_space)

    def sample(self, generator: torch.Generator) -> Dict[str, Tensor]:
        """The random points of this step by point-set name (CPU tensors)."""
        sampled = {p.name: p.sample(generator) for p in self.points}
        return {k: v for k, v in sampled.items() if v is not None}

    def teacher_groups(self, teacher_default: Queries, sampled: Dict[str, Tensor]) -> Dict[str, Queries]:
        return {p.group: p.teacher_queries(teacher_default, sampled.get(p.name)) for p in self.points}

    def student_groups(self, teacher: TeacherStep) -> List[QueryGroup]:
        """The shared points: the teacher's query positions (boxes or embeddings, with its references)
        without content; the student gives them the content it gives any query that is not its own
        (``Queries.content``)."""
        return [QueryGroup(p.group, teacher.queries[p.group].position_only()) for p in self.points if p.shared]

    def losses(self, step: DistillStep) -> Dict[str, Tensor]:
        out, matcher = step.student_outputs, step.student_criterion.matcher
        pairs = [p.pair(out[p.group] if p.shared else out[DETECTION], step.teacher.outputs[p.group], step.targets,
                        matcher) for p in self.points]
        return self.loss(pairs)
