"""Distillation points: the queries whose predictions the student mimics.

Two kinds, both speaking only the seam's types (:class:`~kddetr.modeling.seam.Queries`):

* **Shared points** (KD-DETR): one set of reference boxes decoded by *both* models, so
  prediction ``i`` of the student and of the teacher answer the same query.
  :class:`GeneralPoints` are random anchors, :class:`TeacherQueries` the teacher's own
  detection queries of the image.
* **Own-query baselines** (KD-DETR Table 1): each model decodes its own detection queries and
  predictions are paired by position (:class:`Inconsistent`) or through the ground-truth
  assignment (:class:`SimilarForeground`, :class:`SimilarGeneral`). They show why shared points
  are needed; they are not the method, and use their own loss,
  :class:`~kddetr.distill.kd_detr.BaselineKDLoss` (layer to layer, as the authors' code).

Random parts are drawn by :meth:`DistillPoints.sample` with a generator that the
``DistillTrainer`` owns and checkpoints, so teacher and student see identical points and a
resumed run draws the same points as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..modeling.groups import point_group
from ..modeling.layers import inverse_sigmoid
from ..modeling.seam import BOX_LOGITS, DecoderOutput, Queries, QuerySpace, Targets


@dataclass
class PointPairs:
    """Student and teacher predictions on the same distillation points.

    s_logits: ``[L_s, B, N, K]`` one entry per student decoder layer.
    s_boxes: ``[L_s, B, N, 4]`` cxcywh in [0, 1].
    t_logits: ``[L_t, B, N, K]`` one entry per teacher decoder layer, the last one last (each loss
        picks its layers: :class:`~kddetr.distill.kd_detr.KDDETRLoss` the last,
        :class:`~kddetr.distill.kd_detr.BaselineKDLoss` layer by layer). A ``[B, N, K]`` tensor is
        taken as a teacher with a single layer.
    t_boxes: ``[L_t, B, N, 4]`` (or ``[B, N, 4]``) cxcywh in [0, 1].
    valid: ``[B, N]`` bool, False on padding (ground-truth ordered baselines), or None.
    """

    s_logits: Tensor
    s_boxes: Tensor
    t_logits: Tensor
    t_boxes: Tensor
    valid: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.t_logits.dim() == 3:
            self.t_logits = self.t_logits[None]
        if self.t_boxes.dim() == 3:
            self.t_boxes = self.t_boxes[None]


class DistillPoints(nn.Module):
    """Base class of a set of distillation points.

    Args:
        name: query-group name, unique within a distiller (``kd_<name>`` in the decoder).
    """

    #: True when teacher and student decode the same queries (extra group in the student's
    #: fused pass); False when each uses its own detection queries.
    shared: bool = True

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    @property
    def group(self) -> str:
        return point_group(self.name)

    def bind(self, query_space: QuerySpace) -> None:
        """Called by the distiller with the :class:`QuerySpace` both models decode, before any point
        is drawn."""

    def sample(self, generator: torch.Generator) -> Optional[Tensor]:
        """The random part of this step's points (on the CPU), or None if there is none."""
        return None

    def teacher_queries(self, teacher_default: Queries, sampled: Optional[Tensor]) -> Queries:
        """Queries the teacher decodes; for shared points the student decodes the same ones."""
        raise NotImplementedError

    def pair(self, student: DecoderOutput, teacher: DecoderOutput, targets: Targets, matcher) -> PointPairs:
        """Pair student predictions (all layers) with the teacher's (all layers) on the same points."""
        return PointPairs(student.logits, student.boxes, teacher.logits, teacher.boxes)


class GeneralPoints(DistillPoints):
    """KD-DETR general points: ``num`` random queries, never learned, shared by the whole
    batch and by both models. For box queries they are random anchor boxes; for detectors whose
    queries are learned position embeddings (Conditional DETR, plain Deformable DETR) they are
    random embeddings ~ N(0, 1), the distribution those embeddings are initialised from.

    Args:
        num: M_g (paper: 300 for DAB/Deformable DETR, 900 for DINO).
        init: ``"normal"``: box logits (or embeddings) ~ N(0, 1) (the authors' code);
            ``"uniform"``: cxcywh ~ U(0, 1) (the paper's text; boxes only).
        resample: draw a new set every iteration (authors) or keep one fixed set drawn at build.
        seed: seed of the fixed set (``resample=False``).
    """

    def __init__(self, num: int = 900, init: str = "normal", resample: bool = True, seed: int = 0,
                 name: str = "general"):
        super().__init__(name)
        if init not in ("normal", "uniform"):
            raise ValueError(f"GeneralPoints.init must be 'normal' or 'uniform', got '{init}'")
        self.num, self.init, self.resample, self.seed = num, init, resample, seed
        self.query_space = BOX_LOGITS
        self.register_buffer("fixed", self._draw(torch.Generator().manual_seed(seed)), persistent=False)

    def bind(self, query_space: QuerySpace) -> None:
        if not query_space.is_boxes and self.init != "normal":
            raise ValueError(f"GeneralPoints(init='{self.init}') draws boxes, but the models' queries are "
                             f"'{query_space}' (position embeddings): use init='normal'.")
        self.query_space = query_space
        self.fixed = self._draw(torch.Generator().manual_seed(self.seed)).to(self.fixed.device)

    def _draw(self, generator: torch.Generator) -> Tensor:
        # drawn on the generator's device (the trainer's is a CPU one: the same points on any device)
        if self.init == "normal":
            return torch.randn(self.num, self.query_space.dim, generator=generator, device=generator.device)
        # keep boxes strictly inside (0, 1) so their logits stay finite
        boxes = torch.rand(self.num, 4, generator=generator, device=generator.device)
        return inverse_sigmoid(boxes.clamp(1e-4, 1 - 1e-4))

    def sample(self, generator: torch.Generator) -> Optional[Tensor]:
        return self._draw(generator) if self.resample else None

    def teacher_queries(self, teacher_default: Queries, sampled: Optional[Tensor]) -> Queries:
        ref = teacher_default.position
        points = self.fixed if sampled is None else sampled.to(self.fixed.device, non_blocking=True)
        points = points.to(ref.dtype)[None].expand(ref.shape[0], -1, -1)
        return Queries(boxes=points) if self.query_space.is_boxes else Queries(embeds=points)

    def extra_repr(self) -> str:
        return f"num={self.num}, init={self.init}, resample={self.resample}, space={self.query_space}"


class TeacherQueries(DistillPoints):
    """KD-DETR specific points: the teacher's own detection queries of each image (DINO: its
    two-stage top-k proposals; DAB-DETR: its learned anchors; Conditional DETR: its learned
    position embeddings), detached. The teacher decodes them with their own content (so their
    predictions are its detections); the student decodes their position part with the content it
    gives any query that is not its own (:meth:`~kddetr.modeling.seam.Queries.position_only`).

    Args:
        num: keep the first ``num`` (None: all of them).
    """

    def __init__(self, num: Optional[int] = None, name: str = "specific"):
        super().__init__(name)
        self.num = num

    def teacher_queries(self, teacher_default: Queries, sampled: Optional[Tensor]) -> Queries:
        return teacher_default.first(self.num)

    def extra_repr(self) -> str:
        return f"num={self.num}"


class Inconsistent(DistillPoints):
    """Table 1 "Inconsistent": every detection query of the student mimics the teacher's
    detection query at the same position (the first ``min(N_s, N_t)``), every decoder layer of
    both models kept (:class:`~kddetr.distill.kd_detr.BaselineKDLoss` pairs them layer to layer)."""

    shared = False

    def __init__(self, name: str = "inconsistent"):
        super().__init__(name)

    def teacher_queries(self, teacher_default: Queries, sampled: Optional[Tensor]) -> Queries:
        return teacher_default  # decoded as the teacher decodes them (the teacher runs under no_grad)

    def pair(self, student: DecoderOutput, teacher: DecoderOutput, targets: Targets, matcher) -> PointPairs:
        n = min(student.logits.shape[2], teacher.logits.shape[2])
        return PointPairs(student.logits[:, :, :n], student.boxes[:, :, :n],
                          teacher.logits[:, :, :n], teacher.boxes[:, :, :n])


class SimilarForeground(Inconsistent):
    """Table 1 "Similar Foreground": only the detection queries matched to a ground-truth box,
    paired through that box. Every decoder layer of each model is Hungarian-matched on its own (the
    authors' per-layer indices), so student layer l and teacher layer l are each in ground-truth order."""

    #: add one point per image: the mean prediction of the unmatched queries (Similar General)
    background: bool = False

    def __init__(self, name: str = "similar_foreground"):
        super().__init__(name)

    def pair(self, student: DecoderOutput, teacher: DecoderOutput, targets: Targets, matcher) -> PointPairs:
        # every layer of both models matched in one call (one copy of the costs to the host)
        layers = [(out.logits[i], out.boxes[i]) for out in (student, teacher) for i in range(out.logits.shape[0])]
        matched = matcher.match_many(layers, targets)
        L = student.logits.shape[0]
        s_logits, s_boxes, s_valid = self._gt_ordered_layers(student, targets, matched[:L])
        t_logits, t_boxes, t_valid = self._gt_ordered_layers(teacher, targets, matched[L:])
        # a slot counts only where every layer of both models matched its ground-truth box
        return PointPairs(s_logits, s_boxes, t_logits, t_boxes, s_valid & t_valid)

    def _gt_ordered_layers(self, out: DecoderOutput, targets: Targets, matched) -> Tuple[Tensor, Tensor, Tensor]:
        """Every decoder layer of one model, matched to the ground truth on its own (``matched``, one assignment
        per layer, as the authors' per-layer indices), put in ground-truth order: ``[L, B, T_max (+1), .]`` and
        the ``[B, T_max (+1)]`` slots filled in every layer."""
        logits, boxes, valid = [], [], []
        for layer, idx in enumerate(matched):
            lg, bx, ok = self._gt_ordered(out.logits[layer], out.boxes[layer], idx, targets)
            logits.append(lg)
            boxes.append(bx)
            valid.append(ok)
        return torch.stack(logits), torch.stack(boxes), torch.stack(valid).all(0)

    def _gt_ordered(self, logits: Tensor, boxes: Tensor, indices: List[Tuple[Tensor, Tensor]], targets: Targets
                    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Predictions ``[B, T_max (+1), .]`` in ground-truth order, a validity mask, and (for
        :class:`SimilarGeneral`) one last point: the mean over the unmatched queries."""
        B, Q, K = logits.shape
        T = max([len(t["labels"]) for t in targets] + [1])
        extra = 1 if self.background else 0
        out_l = logits.new_zeros(B, T + extra, K)
        out_b = boxes.new_full((B, T + extra, 4), 0.5)
        valid = torch.zeros(B, T + extra, dtype=torch.bool, device=logits.device)
        for b, (q, g) in enumerate(indices):
            q, g = q.to(logits.device), g.to(logits.device)
            out_l[b, g] = logits[b, q]
            out_b[b, g] = boxes[b, q]
            valid[b, g] = True
            if self.background:
                neg = torch.ones(Q, dtype=torch.bool, device=logits.device)
                neg[q] = False
                out_l[b, T] = logits[b][neg].mean(0)
                out_b[b, T] = boxes[b][neg].mean(0)
                valid[b, T] = True
        return out_l, out_b, valid


class SimilarGeneral(SimilarForeground):
    """Table 1 "Similar General": Similar Foreground plus one background point per image, the
    mean prediction of the queries left unmatched in bipartite matching."""

    background = True

    def __init__(self, name: str = "similar_general"):
        super().__init__(name)
