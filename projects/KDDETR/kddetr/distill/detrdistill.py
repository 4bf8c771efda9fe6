"""DETRDistill (Chang et al., 2023): the second distiller of the package.

Three components, each optional (``None`` in the config switches it off):

* :class:`InstanceDistillation` (progressive instance distillation): every student decoder
  layer is Hungarian-matched to the teacher's predictions of its *stage* (:func:`stage_map`)
  and mimics the matched teacher scores (soft binary cross-entropy) and boxes (L1 + GIoU).
* :class:`FeatureDistillation` (attention-agnostic feature distillation): masked MSE between
  the teacher's neck features and the adapted student's, the mask rebuilt from the teacher's
  top-k queries of a stage; :class:`QueryContrast`: an InfoNCE loss between matched student
  and teacher decoder states.
* :class:`AssignmentDistillation` (teacher-assisted assignment): the teacher's queries as an
  extra group of the student's fused decoder pass, supervised by ground truth under the
  *teacher's* Hungarian assignment.

Like KD-DETR it talks to the detectors only through the seam: the teacher's
:class:`~kddetr.modeling.seam.EncoderState` (``features``), its default queries and its
decoder output, and the student's outputs by query group.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou

from ..modeling.criterion import layer_suffix
from ..modeling.groups import DETECTION, TEACHER_ASSIGNMENT
from ..modeling.layers.box_ops import cxcywh_to_xyxy, generalized_box_iou, generalized_box_iou_loss
from ..modeling.layers.precision import full_precision
from ..modeling.matcher import assignment_to, hungarian
from ..modeling.seam import DecoderOutput, EncoderState, Queries, QueryGroup, Targets
from .interface import DistillStep, TeacherStep

Match = Tuple[Tensor, Tensor]  # (student query index, teacher query index), int64 on the CPU
Pairs = Tuple[Tensor, Tensor, Tensor]  # one layer's matches, flat: (image, student query, teacher query) on the device


def stage_map(student_layers: int, teacher_layers: int) -> List[int]:
    """Teacher decoder layer ("stage") distilled into each student layer.

    Student layer ``i`` (0-based, of ``L_s``) learns from teacher layer
    ``ceil((i + 1) * L_t / L_s) - 1``: equal depths pair layer by layer (the authors' code), the
    last layers always meet, and a shallower student skips teacher stages evenly (6 -> 2 layers:
    ``[2, 5]``; 6 -> 4: ``[1, 2, 4, 5]``); a deeper student repeats them.
    """
    return [math.ceil((layer + 1) * teacher_layers / student_layers) - 1 for layer in range(student_layers)]


def soft_bce(s_logits: Tensor, t_logits: Tensor) -> Tensor:
    """Element-wise binary cross-entropy of ``s_logits`` against the soft targets
    ``sigmoid(t_logits)`` *minus its minimum* (the targets' own entropy), i.e. the binary KL
    divergence: same gradients as the authors' soft BCE, and 0 when the student equals the
    teacher."""
    p_t = t_logits.sigmoid()
    return (F.binary_cross_entropy_with_logits(s_logits, p_t, reduction="none")
            - F.binary_cross_entropy_with_logits(t_logits, p_t, reduction="none"))


def target_aware_scores(logits: Tensor, boxes: Tensor, targets: Targets) -> Tensor:
    """Per prediction: class probabilities times the IoU of its box with the closest
    ground-truth box (the probabilities alone in an image without ground truth).

    Args:
        logits: ``[..., B, N, K]``; boxes: ``[..., B, N, 4]`` cxcywh in [0, 1].

    Returns:
        ``[..., B, N, K]``.
    """
    iou = torch.ones(boxes.shape[:-1], dtype=logits.dtype, device=logits.device)
    xyxy = cxcywh_to_xyxy(boxes.float())
    for b, t in enumerate(targets):
        if len(t["boxes"]):
            gt = cxcywh_to_xyxy(t["boxes"].float())
            iou[..., b, :] = box_iou(xyxy[..., b, :, :].reshape(-1, 4), gt).max(-1)[0].view(iou[..., b, :].shape)
    return logits.float().sigmoid() * iou[..., None]


@full_precision
def info_nce(anchors: Tensor, samples: Tensor, temperature: float, groups: Optional[Tensor] = None) -> Tensor:
    """InfoNCE of ``[M, D]`` anchors against ``[M, D]`` samples, row i's positive being sample i:
    cross-entropy of the cosine similarities / ``temperature`` (in float32). ``groups`` (``[M]``, e.g.
    the image of each row): only samples of the anchor's own group are its negatives."""
    a, s = F.normalize(anchors.float(), dim=-1), F.normalize(samples.float(), dim=-1)
    logits = a @ s.t() / temperature  # [M, M]
    if groups is not None:
        logits = logits.masked_fill(groups[:, None] != groups[None, :], float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


class PredictionMatcher(nn.Module):
    """One-to-one matching of student predictions to teacher predictions (scipy's
    ``linear_sum_assignment``), minimising ``cost_class * binary KL + cost_bbox * L1 +
    cost_giou * (-GIoU)``.

    The class cost is the soft BCE against the teacher's probabilities summed over classes,
    minus the teacher's entropy (:func:`soft_bce`): with as many student as teacher queries
    that constant changes no assignment (the authors' cost); with fewer it keeps confident
    teacher background from being preferred, and a student equal to the teacher is matched
    query to query at zero cost.

    Args:
        cost_class, cost_bbox, cost_giou: DETRDistill: 1, 5, 2.
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0):
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    @full_precision
    def cost_matrix(self, s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor) -> Tensor:
        """``[..., P, K]``, ``[..., P, 4]`` student against ``[..., T, K]``, ``[..., T, 4]`` teacher
        -> ``[..., P, T]``."""
        lead = s_logits.shape[:-2]
        s_logits, t_logits, s_boxes, t_boxes = (x.float().reshape(-1, *x.shape[-2:])
                                                for x in (s_logits, t_logits, s_boxes, t_boxes))
        p_t = t_logits.sigmoid()
        bce = -(F.logsigmoid(s_logits) @ p_t.transpose(-1, -2) + F.logsigmoid(-s_logits) @ (1 - p_t).transpose(-1, -2))
        entropy = F.binary_cross_entropy_with_logits(t_logits, p_t, reduction="none").sum(-1)
        c_l1 = torch.cdist(s_boxes, t_boxes, p=1)
        c_giou = -torch.stack([generalized_box_iou(cxcywh_to_xyxy(a), cxcywh_to_xyxy(b))
                               for a, b in zip(s_boxes, t_boxes)])
        cost = self.cost_class * (bce - entropy[..., None, :]) + self.cost_bbox * c_l1 + self.cost_giou * c_giou
        return cost.view(*lead, *cost.shape[-2:])

    @torch.no_grad()
    def forward(self, s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor) -> List[Match]:
        """Match every ``[P, .]`` / ``[T, .]`` pair of the leading dimensions (e.g. layers x images,
        flattened) with one device-to-host copy. Returns ``(student_idx, teacher_idx)`` per pair."""
        cost = self.cost_matrix(s_logits, s_boxes, t_logits, t_boxes)
        cost = cost.reshape(-1, *cost.shape[-2:]).cpu()
        return assignment_to([hungarian(c) for c in cost], s_logits.device)


def _gather_pairs(matches: Sequence[Match], device: torch.device) -> Pairs:
    """Per-image matches -> flat (image, student query, teacher query) index tensors."""
    img = torch.cat([torch.full_like(s, i) for i, (s, _) in enumerate(matches)]).to(device)
    return img, torch.cat([s for s, _ in matches]).to(device), torch.cat([t for _, t in matches]).to(device)


class InstanceDistillation(nn.Module):
    """Progressive instance distillation: student layer ``l`` mimics the teacher predictions of
    stage ``stage_map[i]`` matched to it by :class:`PredictionMatcher`.

    Per matched pair: class term ``sum_k soft_bce`` (:func:`soft_bce`), box terms L1 (summed
    over cxcywh) and GIoU loss, each weighted by the teacher prediction's target-aware score
    (its top class probability x IoU with the closest ground truth, as the paper describes;
    ``target_aware=False``: unit weights, as the authors' released code) and normalised by the
    sum of the weights.

    Keys: ``loss_pid_cls``, ``loss_pid_l1``, ``loss_pid_giou`` (+ ``_{i}`` for auxiliary layers).

    Args:
        weights: ``cls``, ``l1``, ``giou`` (DETRDistill: 1, 5, 2).
        target_aware: weight the pairs by the target-aware score.
    """

    def __init__(self, weights: Optional[Dict[str, float]] = None, target_aware: bool = True):
        super().__init__()
        self.weights = dict(weights or {"cls": 1.0, "l1": 5.0, "giou": 2.0})
        self.target_aware = target_aware

    def forward(self, student: DecoderOutput, teacher: DecoderOutput, pairs: Sequence[Pairs],
                stages: Sequence[int], scores: Optional[Tensor]) -> Dict[str, Tensor]:
        """
        Args:
            student: the student's detection output ``[L_s, B, P, .]``.
            teacher: the teacher's detection output ``[L_t, B, T, .]``.
            pairs: per student layer, its matched ``(image, student_idx, teacher_idx)``.
            stages: teacher layer of each student layer.
            scores: ``[L_t, B, T, K]`` target-aware scores (needed when ``target_aware``).
        """
        L = student.logits.shape[0]
        losses = {}
        for layer in range(L):
            img, s_idx, t_idx = pairs[layer]
            t = stages[layer]
            s_logits, t_logits = student.logits[layer][img, s_idx].float(), teacher.logits[t][img, t_idx].float()
            s_boxes, t_boxes = student.boxes[layer][img, s_idx].float(), teacher.boxes[t][img, t_idx].float()
            w = scores[t][img, t_idx].max(-1)[0] if self.target_aware else torch.ones_like(s_logits[:, 0])
            w_sum = w.sum().clamp(min=1e-6)
            terms = {
                "cls": soft_bce(s_logits, t_logits).sum(-1),
                "l1": (s_boxes - t_boxes).abs().sum(-1),
                "giou": generalized_box_iou_loss(cxcywh_to_xyxy(s_boxes), cxcywh_to_xyxy(t_boxes), reduction="none"),
            }
            tag = layer_suffix("", layer, L)
            for name, value in terms.items():
                losses[f"loss_pid_{name}{tag}"] = (w * value).sum() / w_sum * self.weights[name]
        return losses

    def extra_repr(self) -> str:
        return f"weights={self.weights}, target_aware={self.target_aware}"


class FeatureDistillation(nn.Module):
    """Attention-agnostic feature distillation on the neck features (the encoder's input,
    ``EncoderState.features``), one loss per teacher stage.

    Mask of a stage, per image and level: ``m = sum_n w_n * cos(q_n, F_t)`` over the teacher's
    ``topk`` (query, class) pairs by score, ``q_n`` the query's decoder state at that stage and
    ``w_n`` its class probability x IoU with the closest ground truth; clamped to ``>= min_mask``
    and divided by its maximum over the level, so it lies in ``[min_mask, 1]`` with maximum 1.
    Loss: ``sum_levels mean((m * (F_t - adapter(F_s)))^2)`` over the level's elements that are not
    padding (mask 0 there): a process pads its images to one size, so counting padding would make the
    term depend on how many images each process holds.

    The adapter (a linear map, i.e. a 1x1 convolution, from the student's to the teacher's
    width) starts as the identity when the widths are equal.

    Keys: ``loss_fd`` (the teacher's last stage) and ``loss_fd_{i}`` (earlier stages).

    Args:
        topk: (query, class) pairs that build the mask (DETRDistill: 100).
        min_mask: lower clamp of the mask (1e-2).
        weight: loss weight (1.0).
        stages: ``"all"`` teacher stages (the authors) or only the ``"last"``.
    """

    def __init__(self, topk: int = 100, min_mask: float = 1e-2, weight: float = 1.0, stages: str = "all"):
        super().__init__()
        if stages not in ("all", "last"):
            raise ValueError(f"FeatureDistillation.stages must be 'all' or 'last', got '{stages}'")
        self.topk, self.min_mask, self.weight, self.stages = topk, min_mask, weight, stages
        self.adapter: Optional[nn.Linear] = None

    def bind(self, student_dim: int, teacher_dim: int) -> None:
        self.adapter = nn.Linear(student_dim, teacher_dim)
        if student_dim == teacher_dim:
            with torch.no_grad():
                self.adapter.weight.copy_(torch.eye(teacher_dim))
                self.adapter.bias.zero_()

    @torch.no_grad()
    @full_precision
    def masks(self, t_state: EncoderState, t_out: DecoderOutput, scores: Tensor) -> Tensor:
        """``[L, B, S]`` masks, one per teacher stage kept (``L`` = all stages or 1).

        ``scores``: ``[L_t, B, T, K]`` target-aware scores of the teacher's predictions."""
        hidden, probs = t_out.hidden, t_out.logits.float().sigmoid()
        if self.stages == "last":
            hidden, probs, scores = hidden[-1:], probs[-1:], scores[-1:]
        L, B, T, K = probs.shape
        k = min(self.topk, T * K)
        top = probs.flatten(2).topk(k, dim=-1)[1]  # [L, B, k] over (query, class)
        query = torch.div(top, K, rounding_mode="floor")
        w = torch.gather(scores.flatten(2), 2, top)
        q = torch.gather(F.normalize(hidden.float(), dim=-1), 2, query[..., None].expand(-1, -1, -1, hidden.shape[-1]))
        # sum_n w_n <q_n, f> = <sum_n w_n q_n, f>: one weighted query vector per stage and image
        agg = (w[..., None] * q).sum(2)  # [L, B, D]
        feats = F.normalize(t_state.features.float(), dim=-1)  # [B, S, D]
        mask = torch.einsum("lbd,bsd->lbs", agg, feats).clamp(min=self.min_mask)
        mask = mask * (~t_state.padding_mask).to(mask.dtype)  # 0 on padding, which is not the image's
        sizes = [h * w_ for h, w_ in t_state.spatial_shapes]
        return torch.cat([m / m.max(-1, keepdim=True)[0] for m in mask.split(sizes, -1)], -1)

    def forward(self, s_state: EncoderState, t_state: EncoderState, t_out: DecoderOutput, scores: Tensor
                ) -> Dict[str, Tensor]:
        if s_state.spatial_shapes != t_state.spatial_shapes:
            raise ValueError(
                f"FeatureDistillation: the student's feature levels {s_state.spatial_shapes} differ from the "
                f"teacher's {t_state.spatial_shapes}; feature distillation compares the two necks position by "
                "position. Give both models the same levels (same family / neck and input size) or switch it off "
                "with model.detrdistill.feature=null."
            )
        mask = self.masks(t_state, t_out, scores)  # [L, B, S]
        diff = (t_state.features.detach().float() - self.adapter(s_state.features).float()).pow(2).sum(-1)  # [B, S]
        C = t_state.features.shape[-1]
        sizes = [h * w for h, w in t_state.spatial_shapes]
        per_pos = mask.pow(2) * diff  # [L, B, S], 0 on padding (the mask is)
        # a mean over the image pixels of the process: padding, which grows with the images a process pads
        # to one size, does not count
        pixels = [n.sum().clamp(min=1) for n in (~t_state.padding_mask).sum(0).split(sizes)]  # per level
        loss = sum(part.sum((1, 2)) / (n * C) for part, n in zip(per_pos.split(sizes, -1), pixels))  # [L]
        L = loss.shape[0]
        return {f"loss_fd{layer_suffix('', i, L)}": loss[i] * self.weight for i in range(L)}

    def extra_repr(self) -> str:
        return f"topk={self.topk}, min_mask={self.min_mask}, weight={self.weight}, stages={self.stages}"


class QueryContrast(nn.Module):
    """Contrastive loss on matched query embeddings: for every (student, teacher) pair matched
    by the instance matching of a layer, the teacher's decoder state is the anchor, the matched
    student state the positive, the other matched student states of the same image the negatives
    (InfoNCE, one direction; ``negatives="batch"``: of every image of the process, whose number, and
    so the loss, then grows with the images a process holds). Both sides go through their own projection head
    (Linear -> BatchNorm -> ReLU -> Linear, then L2 normalisation).

    Keys: ``loss_qcl`` (+ ``_{i}`` for auxiliary student layers).

    Args:
        weight: DETRDistill: 0.2.
        temperature: 0.07.
        proj_dim: width of the projected embeddings (0: the teacher's width).
        negatives: ``"image"`` (default) or ``"batch"``.
    """

    def __init__(self, weight: float = 0.2, temperature: float = 0.07, proj_dim: int = 0, negatives: str = "image"):
        super().__init__()
        if negatives not in ("image", "batch"):
            raise ValueError(f"QueryContrast.negatives must be 'image' or 'batch', got '{negatives}'")
        self.weight, self.temperature, self.proj_dim, self.negatives = weight, temperature, proj_dim, negatives
        self.student_proj: Optional[nn.Module] = None
        self.teacher_proj: Optional[nn.Module] = None

    @staticmethod
    def _head(in_dim: int, hidden: int, out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Linear(hidden, out))

    def bind(self, student_dim: int, teacher_dim: int) -> None:
        out = self.proj_dim or teacher_dim
        self.student_proj = self._head(student_dim, 2 * teacher_dim, out)
        self.teacher_proj = self._head(teacher_dim, 2 * teacher_dim, out)

    def forward(self, student: DecoderOutput, teacher: DecoderOutput, pairs: Sequence[Pairs],
                stages: Sequence[int]) -> Dict[str, Tensor]:
        L = student.hidden.shape[0]
        losses = {}
        for layer in range(L):
            img, s_idx, t_idx = pairs[layer]
            s = self.student_proj(student.hidden[layer][img, s_idx])
            t = self.teacher_proj(teacher.hidden[stages[layer]][img, t_idx].detach())
            groups = img if self.negatives == "image" else None
            losses[f"loss_qcl{layer_suffix('', layer, L)}"] = info_nce(t, s, self.temperature, groups) * self.weight
        return losses

    def extra_repr(self) -> str:
        return (f"weight={self.weight}, temperature={self.temperature}, proj_dim={self.proj_dim}, "
                f"negatives={self.negatives}")


class AssignmentDistillation(nn.Module):
    """Teacher-assisted assignment: the teacher's detection queries (their positions, with the
    content the student gives a query that is not its own, ``Queries.content``) are decoded by
    the student as the extra group ``"tqa"`` of its fused pass, and student layer ``i`` is
    trained on ground truth under the Hungarian assignment of the teacher's stage ``stage_map[i]``
    (the teacher's matcher on the teacher's predictions, so the assignment does not depend on the
    student).

    Keys: the student criterion's ``loss_class_tqa``, ``loss_bbox_tqa``, ``loss_giou_tqa``
    (+ ``_{i}``), with the criterion's weights.

    Args:
        num: feed the teacher's first ``num`` queries (None: all).
    """

    group = TEACHER_ASSIGNMENT

    def __init__(self, num: Optional[int] = None):
        super().__init__()
        self.num = num

    def student_group(self, teacher_default: Queries) -> QueryGroup:
        return QueryGroup(self.group, teacher_default.position_only(self.num))

    def forward(self, student: DecoderOutput, teacher: DecoderOutput, targets: Targets, criterion: nn.Module,
                teacher_matcher: nn.Module, stages: Sequence[int]) -> Dict[str, Tensor]:
        L, B, N = student.logits.shape[:3]
        used = sorted(set(stages))
        # every needed teacher stage matched in one call (one device-to-host copy)
        idx = teacher_matcher(teacher.logits[used, :, :N].flatten(0, 1), teacher.boxes[used, :, :N].flatten(0, 1),
                              list(targets) * len(used))
        by_stage = {t: idx[i * B:(i + 1) * B] for i, t in enumerate(used)}
        num_boxes = criterion.num_boxes(targets, student.logits.device)
        losses = {}
        for layer in range(L):
            terms = criterion.matched_losses(student.logits[layer], student.boxes[layer], targets,
                                             by_stage[stages[layer]], num_boxes)
            losses.update({k + layer_suffix("_tqa", layer, L): v for k, v in terms.items()})
        return losses

    def extra_repr(self) -> str:
        return f"num={self.num}"


class DETRDistill(nn.Module):
    """The DETRDistill losses; every component is optional. A :class:`~kddetr.distill.interface.Distiller`:
    the teacher decodes its own detection queries, the student (with teacher-assisted assignment) decodes
    them too, as the group :data:`~kddetr.modeling.groups.TEACHER_ASSIGNMENT`.

    Args:
        matcher: :class:`PredictionMatcher` (student <-> teacher predictions, per layer).
        instance: :class:`InstanceDistillation` or None.
        feature: :class:`FeatureDistillation` or None.
        query_contrast: :class:`QueryContrast` or None.
        assignment: :class:`AssignmentDistillation` or None.
    """

    def __init__(self, matcher: Optional[PredictionMatcher] = None, instance: Optional[InstanceDistillation] = None,
                 feature: Optional[FeatureDistillation] = None, query_contrast: Optional[QueryContrast] = None,
                 assignment: Optional[AssignmentDistillation] = None):
        super().__init__()
        parts = dict(instance=instance, feature=feature, query_contrast=query_contrast, assignment=assignment)
        for name, part in parts.items():
            if part is not None and not isinstance(part, nn.Module):
                raise TypeError(
                    f"DETRDistill: model.detrdistill.{name} is {part!r}, not a component. To switch it off write "
                    f"model.detrdistill.{name}=null on the command line (Hydra syntax; 'None' is a string there) or "
                    f"{name}=False in detrdistill() of configs/common/detrdistill.py."
                )
        if not any((instance, feature, query_contrast, assignment)):
            raise ValueError("DETRDistill: every component is switched off (instance, feature, query_contrast, "
                             "assignment are all None); enable one or drop model.detrdistill.")
        self.matcher = matcher or PredictionMatcher()
        self.instance, self.feature = instance, feature
        self.query_contrast, self.assignment = query_contrast, assignment

    name = "detrdistill"

    @property
    def shares_queries(self) -> bool:
        """The student decodes the teacher's queries (teacher-assisted assignment)."""
        return self.assignment is not None

    def bind(self, teacher: nn.Module, student: nn.Module) -> None:
        """Build the trainable parts whose sizes depend on the pair (adapter, projection heads)."""
        for part in (self.feature, self.query_contrast):
            if part is not None:
                part.bind(student.embed_dim, teacher.embed_dim)

    def check_num_classes(self, num_classes: int) -> None:
        """Every term works for any number of classes (its targets are the teacher's sigmoid scores)."""

    def sample(self, generator: torch.Generator) -> Dict[str, Tensor]:
        return {}  # nothing random: every term pairs predictions the models made

    def teacher_groups(self, teacher_default: Queries, sampled: Dict[str, Tensor]) -> Dict[str, Queries]:
        """The teacher's own detection queries: every term reads their predictions."""
        return {DETECTION: teacher_default}

    def student_groups(self, teacher: TeacherStep) -> List[QueryGroup]:
        """Extra query groups of the student's fused pass: the teacher's queries, for the assignment."""
        return [self.assignment.student_group(teacher.default)] if self.assignment is not None else []

    def losses(self, step: DistillStep) -> Dict[str, Tensor]:
        return self(step.student_state, step.student_outputs, step.teacher.state, step.teacher.outputs[DETECTION],
                    step.targets, step.student_criterion, step.teacher_matcher)

    def forward(self, s_state: EncoderState, s_outputs: Dict[str, DecoderOutput], t_state: EncoderState,
                t_det: DecoderOutput, targets: Targets, criterion: nn.Module, teacher_matcher: nn.Module
                ) -> Dict[str, Tensor]:
        """
        Args:
            s_state, s_outputs: the student's encoder state and decoder outputs by group
                (``"det"``, and ``"tqa"`` with teacher-assisted assignment).
            t_state, t_det: the teacher's encoder state and detection output (no grad).
            targets: per image ``{"labels", "boxes"}``.
            criterion: the student's criterion; teacher_matcher: the teacher's GT matcher.
        """
        s_det = s_outputs[DETECTION]
        L_s, B = s_det.logits.shape[:2]
        stages = stage_map(L_s, t_det.logits.shape[0])
        losses: Dict[str, Tensor] = {}
        scores = None
        if (self.instance is not None and self.instance.target_aware) or self.feature is not None:
            scores = target_aware_scores(t_det.logits, t_det.boxes, targets)  # [L_t, B, T, K]
        if self.instance is not None or self.query_contrast is not None:
            flat = self.matcher(s_det.logits, s_det.boxes, t_det.logits[stages], t_det.boxes[stages])
            # flattened once, used by both components
            pairs = [_gather_pairs(flat[layer * B:(layer + 1) * B], s_det.logits.device) for layer in range(L_s)]
            if self.instance is not None:
                losses.update(self.instance(s_det, t_det, pairs, stages, scores))
            if self.query_contrast is not None:
                losses.update(self.query_contrast(s_det, t_det, pairs, stages))
        if self.feature is not None:
            losses.update(self.feature(s_state, t_state, t_det, scores))
        if self.assignment is not None:
            losses.update(self.assignment(s_outputs[self.assignment.group], t_det, targets, criterion,
                                          teacher_matcher, stages))
        return losses
