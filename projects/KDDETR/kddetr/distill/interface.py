"""The distiller interface: what a distillation method adds to a training step of ``KDDETR``.

A step runs in three stages, and a distiller takes part in each through one method:

1. the teacher (frozen, no grad) encodes the images, chooses its own detection queries and decodes, in one
   pass, every group the distillers ask for: :meth:`Distiller.teacher_groups` (KD-DETR: its point sets;
   DETRDistill: the teacher's own detection queries, :data:`~kddetr.modeling.groups.DETECTION`);
2. the student encodes the images and decodes its detection and denoising queries together with every
   group the distillers add, in one masked pass: :meth:`Distiller.student_groups` (KD-DETR: the shared
   points at the teacher's positions; DETRDistill: the teacher's queries for the teacher-assisted assignment);
3. each distiller returns its losses from both sides of the step: :meth:`Distiller.losses` on a
   :class:`DistillStep`.

Group names come from :mod:`kddetr.modeling.groups`. ``KDDETR`` loops over its distillers and knows none of
them; a new method is a class with these members, given to ``KDDETR(distillers=[...])``
(``model.distillers=[L(MyDistiller)(...)]`` in a config; ``tests/test_distiller_interface.py`` registers one
from the test file alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..modeling.seam import Criterion, DecoderOutput, EncoderState, Matcher, Queries, QueryGroup, Targets


@dataclass
class TeacherStep:
    """The teacher's side of a training step (all without gradients).

    state: its encoder state (``memory [B, S, D]``); default: its own detection queries (with the reference
    the teacher decodes them at);
    queries, outputs: every group it decoded and its :class:`DecoderOutput` (``logits [L, B, N, K]``,
    ``boxes [L, B, N, 4]``), by group name.
    """

    state: EncoderState
    default: Queries
    queries: Dict[str, Queries]
    outputs: Dict[str, DecoderOutput]


@dataclass
class DistillStep:
    """Both sides of a training step, as a distiller's losses read them.

    teacher: :class:`TeacherStep`; student_state: the student's :class:`EncoderState`; student_outputs: its
    :class:`DecoderOutput` by group (detection, denoising and every distiller's group); targets: per image
    ``{"labels": [T], "boxes": [T, 4]}`` cxcywh in [0, 1]; student_criterion: the student's detection
    criterion (its ``matcher`` included); teacher_matcher: the teacher's ground-truth matcher.
    """

    teacher: TeacherStep
    student_state: EncoderState
    student_outputs: Dict[str, DecoderOutput]
    targets: Targets
    student_criterion: Criterion
    teacher_matcher: Matcher


@runtime_checkable
class Distiller(Protocol):
    """A distillation method, as ``KDDETR`` drives it (an ``nn.Module``: what it trains is the student's
    optimizer's and its checkpoints'; a distiller has no access to the models beyond the seam)."""

    #: unique among a model's distillers; names it in messages
    name: str
    #: the student decodes queries the teacher chose, so both must decode the same query space
    shares_queries: bool

    def check_num_classes(self, num_classes: int) -> None:
        """Refuse, naming the fix, a setting that cannot work for ``num_classes`` (e.g. a zero term)."""

    def bind(self, teacher: nn.Module, student: nn.Module) -> None:
        """Called once the pair is known and checked: build what depends on it (e.g. adapters)."""

    def sample(self, generator: torch.Generator) -> Dict[str, Tensor]:
        """The step's random draws (CPU tensors, keys unique among the distillers), from ``generator``,
        whose state the trainer checkpoints; {} for a method without any."""

    def teacher_groups(self, teacher_default: Queries, sampled: Dict[str, Tensor]) -> Dict[str, Queries]:
        """Groups the teacher decodes this step, by name; ``teacher_default`` is its own detection queries
        (returned under :data:`~kddetr.modeling.groups.DETECTION` when the method needs their predictions)."""

    def student_groups(self, teacher: TeacherStep) -> List[QueryGroup]:
        """Groups the student decodes this step, besides its detection and denoising queries."""

    def losses(self, step: DistillStep) -> Dict[str, Tensor]:
        """The method's loss terms (``loss_*`` keys, weights applied)."""


def missing_distiller_members(distiller: object) -> List[str]:
    """The members of :class:`Distiller` that ``distiller`` lacks."""
    members = [m for m in dir(Distiller) if not m.startswith("_") and m not in dir(Protocol)]
    members += list(getattr(Distiller, "__annotations__", {}))
    return sorted({m for m in members if not hasattr(distiller, m)})
