"""The distillation seam: the whole contract between a DETR and the distillers.

``encode(images) -> EncoderState``
    backbone, neck and encoder.
``default_queries(state) -> Queries``
    the detector's own detection queries (learned anchors or embeddings, or two-stage
    proposals).
``decode(state, groups) -> list[DecoderOutput]``
    decodes several :class:`QueryGroup` in **one** decoder pass; a block attention mask
    keeps the groups apart, so each group's output equals a separate pass over it.

:class:`DistillableDETR` lists every member a distiller uses (these three, the detection
training pass with extra groups, input and target preparation, the classes, the
:class:`QuerySpace` and the criterion with its matcher); ``KDDETR`` checks it with
:func:`missing_seam_members`. Distillation code only talks to detectors through these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor

#: Ground truth of a batch as every loss and matcher takes it: per image
#: ``{"labels": [T] int64, "boxes": [T, 4] cxcywh in [0, 1]}``.
Targets = Sequence[Dict[str, Tensor]]

#: Hungarian assignment per image: (prediction indices ``[M]``, target indices ``[M]``), int64.
Assignment = List[Tuple[Tensor, Tensor]]


@dataclass
class EncoderState:
    """What the decoder needs from the encoder.

    memory: ``[B, S, D]`` encoder output over all levels.
    padding_mask: ``[B, S]`` bool, True on padded pixels.
    spatial_shapes: ``[(h, w)]`` per level, Python ints.
    spatial_shapes_t: ``[L, 2]`` long tensor of the same.
    level_start_index: ``[L]`` long tensor, offset of each level in ``S``.
    valid_ratios: ``[B, L, 2]`` (w, h) share of each level that is not padding.
    image_sizes: ``[(h, w)]`` per image, unpadded input size.
    pos: ``[B, S, D]`` position embedding of the memory, for decoders that add it to the keys
        of their cross-attention (single-scale DETRs); None for deformable decoders.
    features: ``[B, S, D]`` the encoder's input (neck / input projection output, flattened like
        the memory), for feature distillation.
    """

    memory: Tensor
    padding_mask: Tensor
    spatial_shapes: List[Tuple[int, int]]
    spatial_shapes_t: Tensor
    level_start_index: Tensor
    valid_ratios: Tensor
    image_sizes: List[Tuple[int, int]]
    pos: Optional[Tensor] = None
    features: Optional[Tensor] = None


@dataclass(frozen=True)
class QuerySpace:
    """What the *position* part of a detector's queries is, so a distiller can check that teacher
    and student decode the same distillation points.

    kind: ``"box_logits"``: reference boxes ``[B, N, 4]`` as inverse-sigmoid cxcywh (DINO, DAB-DETR,
        DAB-Deformable DETR, two-stage Deformable DETR); ``"embedding"``: learned position
        embeddings ``[B, N, dim]`` that the detector maps to reference points (Conditional DETR,
        single-stage Deformable DETR).
    family: for embeddings, the detector class that gives them a meaning (an embedding only
        means something to the family that maps it to a reference point); None for boxes.
    dim: width of the position part (4 for boxes).
    """

    kind: str
    family: Optional[str] = None
    dim: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("box_logits", "embedding"):
            raise ValueError(f"QuerySpace.kind must be 'box_logits' or 'embedding', got '{self.kind}'")

    @classmethod
    def embedding(cls, family: str, dim: int) -> "QuerySpace":
        return cls("embedding", family, dim)

    @property
    def is_boxes(self) -> bool:
        return self.kind == "box_logits"

    def __str__(self) -> str:
        return self.kind if self.is_boxes else f"embedding:{self.family}:{self.dim}"


BOX_LOGITS = QuerySpace("box_logits")


@dataclass
class Queries:
    """A set of decoder queries: a *position* part (``boxes`` or ``embeds``, whichever the
    detector's ``query_space`` says) and an optional content part.

    boxes: ``[B, N, 4]`` reference boxes as *logits* (inverse sigmoid of cxcywh in [0, 1]).
    content: ``[B, N, D]`` content vectors, or None for the content the detector gives a query that
        is not its own (zero in DAB-DETR, Conditional DETR and DAB-Deformable DETR; DINO's learned
        table row by row; Deformable DETR's computed from the box (two-stage) or its learned table).
    aux: extra predictions made while choosing the queries (e.g. DINO's encoder
        proposals ``{"logits": [B, N, K], "boxes": [B, N, 4]}``), used by the criterion.
    embeds: ``[B, N, D]`` learned position embeddings, for detectors whose queries are not
        boxes (the decoder maps them to reference points).
    reference: ``[B, N, 2 | 4]`` reference logits the decoder uses instead of the ones the
        detector derives from the position part (``DETRBase.embed_queries``'s third output), or
        None. Shared distillation points carry the *teacher's*, so that both models decode them at
        the same place in every family: for box queries it equals ``boxes``; for embedding queries
        (Conditional DETR, plain Deformable DETR) the embedding is only a name that each model maps
        to a point through its own learned layer, and without it the "shared" points would sit
        at different places in teacher and student.
    """

    boxes: Optional[Tensor] = None
    content: Optional[Tensor] = None
    aux: Dict[str, Tensor] = field(default_factory=dict)
    embeds: Optional[Tensor] = None
    reference: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if (self.boxes is None) == (self.embeds is None):
            raise ValueError("Queries need exactly one position part: boxes or embeds")

    @property
    def position(self) -> Tensor:
        """The position part, ``[B, N, 4]`` box logits or ``[B, N, D]`` embeddings."""
        return self.boxes if self.boxes is not None else self.embeds

    @property
    def num(self) -> int:
        return self.position.shape[1]

    def first(self, num: Optional[int] = None) -> "Queries":
        """The first ``num`` queries, detached, content (and ``reference``) kept: what the model that
        owns them decodes (the teacher's own queries as specific distillation points)."""
        cut = lambda t: None if t is None else t[:, :num].detach()  # noqa: E731
        return Queries(boxes=cut(self.boxes), content=cut(self.content), embeds=cut(self.embeds),
                       reference=cut(self.reference))

    def position_only(self, num: Optional[int] = None) -> "Queries":
        """The first ``num`` queries' position part (and ``reference``), detached, without
        content: what a second model decodes with the content it gives a query that is not its own
        (shared distillation points)."""
        pos = self.position[:, :num].detach()
        ref = None if self.reference is None else self.reference[:, :num].detach()
        return Queries(boxes=pos, reference=ref) if self.boxes is not None else Queries(embeds=pos, reference=ref)


@dataclass
class QueryGroup:
    """Queries decoded together with other groups but kept apart by the attention mask.

    name: unique within one ``decode`` call.
    self_mask: ``[N, N]`` bool, True where a query of this group may *not* attend to
        another query of the group (e.g. the separate denoising groups); None = all visible.
    sees: names of other groups this group may attend to (DINO's denoising queries see
        the matching queries, never the reverse).
    """

    name: str
    queries: Queries
    self_mask: Optional[Tensor] = None
    sees: Tuple[str, ...] = ()


@dataclass
class DecoderOutput:
    """Per decoder layer predictions of one group.

    logits: ``[L, B, N, K]`` class logits (sigmoid classification).
    boxes: ``[L, B, N, 4]`` cxcywh in [0, 1].
    hidden: ``[L, B, N, D]`` normalised decoder states.
    """

    logits: Tensor
    boxes: Tensor
    hidden: Tensor


def fused_attention_mask(groups: Sequence[QueryGroup], device: torch.device) -> Optional[Tensor]:
    """Block attention mask ``[N_total, N_total]`` (True = blocked) for groups in order.

    Returns None when there is a single group without an inner mask.
    """
    if len(groups) == 1 and groups[0].self_mask is None:
        return None
    sizes = [g.queries.num for g in groups]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    index = {g.name: i for i, g in enumerate(groups)}
    if len(index) != len(groups):
        raise ValueError(f"query group names must be unique, got {[g.name for g in groups]}")
    total = sum(sizes)
    mask = torch.ones(total, total, dtype=torch.bool, device=device)
    for i, g in enumerate(groups):
        rows = slice(starts[i], starts[i] + sizes[i])
        mask[rows, rows] = False if g.self_mask is None else g.self_mask
        for other in g.sees:
            if other not in index:
                raise KeyError(f"query group '{g.name}' sees unknown group '{other}'")
            j = index[other]
            mask[rows, starts[j] : starts[j] + sizes[j]] = False
    return mask


class Matcher(Protocol):
    """Hungarian matching of predictions ``[B, Q, K]`` logits / ``[B, Q, 4]`` cxcywh boxes to targets; several
    sets of predictions (every decoder layer) at once with ``match_many``, one assignment per set (the
    criterion and the Table 1 baselines use it: one copy of the costs to the host for all)."""

    def __call__(self, logits: Tensor, boxes: Tensor, targets: Targets) -> Assignment: ...

    def match_many(self, predictions: Sequence[Tuple[Tensor, Tensor]], targets: Targets) -> List[Assignment]: ...


class Criterion(Protocol):
    """The detection criterion as distillers use it (DETRDistill supervises extra groups with it)."""

    matcher: Matcher

    def num_boxes(self, targets: Targets, device: torch.device) -> Tensor: ...

    def matched_losses(self, logits: Tensor, boxes: Tensor, targets: Targets, indices: Assignment,
                       num_boxes: Tensor) -> Dict[str, Tensor]: ...


class DistillableDETR(Protocol):
    """Everything ``KDDETR`` and its distillers use of a teacher or student detector."""

    num_classes: int
    query_space: QuerySpace
    criterion: Criterion

    def preprocess_image(self, batched_inputs: List[Dict]) -> Tuple[object, Tensor]:
        """Normalised, padded ``ImageList`` and the ``[B, H, W]`` padding mask (True on padding)."""
        ...

    def prepare_targets(self, batched_inputs: List[Dict]) -> Targets: ...

    def encode(self, images: object, padding_mask: Tensor) -> EncoderState: ...

    def default_queries(self, state: EncoderState) -> Queries: ...

    def decode(self, state: EncoderState, groups: Sequence[QueryGroup]) -> List[DecoderOutput]: ...

    def forward_train(self, state: EncoderState, queries: Queries, targets: Targets,
                      extra_groups: Sequence[QueryGroup] = ()) -> Tuple[Dict[str, Tensor], Dict[str, DecoderOutput]]:
        """Detection losses of one fused pass over detection, denoising and ``extra_groups``, and
        every group's output by name."""
        ...


def _protocol_members(proto: type) -> List[str]:
    names = list(getattr(proto, "__annotations__", {}))
    return names + [k for k, v in vars(proto).items() if callable(v) and not k.startswith("_")]


def missing_seam_members(model: object) -> List[str]:
    """Members of :class:`DistillableDETR` (and of its criterion: ``criterion.matcher``,
    ``criterion.num_boxes``, ``criterion.matched_losses``, and of its matcher: ``match_many``) that ``model``
    lacks."""
    missing = [m for m in _protocol_members(DistillableDETR) if not hasattr(model, m)]
    criterion = getattr(model, "criterion", None)
    if criterion is not None:
        missing += [f"criterion.{m}" for m in _protocol_members(Criterion) if not hasattr(criterion, m)]
        matcher = getattr(criterion, "matcher", None)
        if matcher is not None:
            missing += [f"criterion.matcher.{m}" for m in _protocol_members(Matcher) if not hasattr(matcher, m)]
    return missing
