"""The distillation META_ARCH: a frozen teacher DETR, a trainable student DETR, a distiller."""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import Tensor, nn

from ..checkpoint import CheckpointError, load_strict, read_state_dict
from ..engine.teacher_check import TeacherCheck
from ..errors import ConfigError, MissingInputError
from ..modeling.seam import DecoderOutput, EncoderState, Queries, QueryGroup, missing_seam_members
from .detrdistill import DETRDistill
from .interface import Distiller, DistillStep, TeacherStep, missing_distiller_members
from .kd_detr import BaselineKDLoss, KDDETRDistiller, KDDETRLoss
from .points import DistillPoints

logger = logging.getLogger(__name__)

TEACHER_PREFIX = "teacher."
#: ``model.teacher_precision``: the autocast type the frozen teacher runs in (None: no autocast)
TEACHER_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@META_ARCH_REGISTRY.register()
class KDDETR(nn.Module):
    """Knowledge distillation of a DETR into a smaller DETR by one or more distillers: KD-DETR on shared
    distillation points, DETRDistill, both, or any :class:`~kddetr.distill.interface.Distiller`.

    Training forward: the teacher (eval mode, no_grad) encodes the images, chooses its own
    queries and decodes every group its distillers ask for, in one pass; the student decodes its
    detection and denoising queries and every distiller's groups in one masked pass; each distiller
    then adds its losses. Returns the student's detection losses and the distillers' terms
    (``loss_kd_*``: KD-DETR; ``loss_pid_* / loss_fd* / loss_qcl* / *_tqa``: DETRDistill). Eval forward:
    the student's predictions only. No distiller is special-cased here: each takes part through
    the interface only (:mod:`kddetr.distill.interface`).

    The teacher is frozen and left out of ``state_dict()``: checkpoints hold the student (and
    whatever the distiller trains), the teacher always comes from ``teacher_weights``.

    Args:
        teacher, student: detectors implementing the seam (``encode``, ``default_queries``,
            ``decode``, ``forward_train``), with the same classes.
        points: KD-DETR's distillation point sets (e.g. ``[GeneralPoints(900), TeacherQueries()]``);
            empty for DETRDistill alone.
        loss: :class:`KDDETRLoss` (needed with points), or :class:`BaselineKDLoss` for the Table 1 baselines;
            with ``points`` it makes the KD-DETR distiller (:class:`~kddetr.distill.kd_detr.KDDETRDistiller`).
        detrdistill: :class:`~kddetr.distill.detrdistill.DETRDistill` or None.
        distillers: further :class:`~kddetr.distill.interface.Distiller` modules, after those two.
        teacher_weights: checkpoint of the teacher (Detectron2/detrex ``{"model": state_dict}``
            or a bare state dict); every teacher parameter must be in it.
        allow_untrained_teacher: distil from a randomly initialised teacher when
            ``teacher_weights`` is empty (tests only).
        teacher_check: ``dict(images=50, min_ap=1.0)``: before the first step train_net.py evaluates the
            loaded teacher on the first ``images`` test images and stops below ``min_ap`` COCO AP
            (:mod:`kddetr.engine.teacher_check`); ``images=0`` turns it off.
        teacher_precision: ``"fp32"`` (default: no autocast of its own; under ``train.amp`` the
            teacher runs in the step's precision, like the student), or ``"bf16"`` / ``"fp16"``:
            the frozen teacher alone runs under autocast in that type, to save its time and
            activation memory on a GPU (fp16 autocast on a CPU is slow; use bf16 there). Its outputs
            are returned in float32, so the losses see the same types as with an fp32 teacher
            (``tests/test_amp.py`` bounds the difference of its predictions).
    """

    @configurable
    def __init__(self, *, teacher: nn.Module, student: nn.Module, points: Sequence[DistillPoints] = (),
                 loss: Optional[Union[KDDETRLoss, BaselineKDLoss]] = None, detrdistill: Optional[DETRDistill] = None,
                 distillers: Sequence[Distiller] = (), teacher_weights: str = "", allow_untrained_teacher: bool = False,
                 teacher_precision: str = "fp32", teacher_check: Optional[Union[Dict, TeacherCheck]] = None):
        super().__init__()
        self.teacher_check = teacher_check_settings(teacher_check)
        if teacher_precision not in TEACHER_PRECISIONS:
            raise ConfigError(f"KDDETR: model.teacher_precision must be one of {sorted(TEACHER_PRECISIONS)}, got "
                             f"'{teacher_precision}'")
        self.teacher_precision = teacher_precision
        self.teacher, self.student = teacher, student
        if len(points) and loss is None:
            raise ConfigError("KDDETR: model.points are set but model.loss is None; KD-DETR's points need "
                             "model.loss=L(KDDETRLoss)(...) (configs/common/kd_detr.py: kd_loss(), or baseline_loss() "
                             "for the Table 1 baselines).")
        # the distillers, as config keys name them; their registration keeps the checkpoints' keys
        self.kd_detr = KDDETRDistiller(points, loss) if len(points) else None
        self.detrdistill = detrdistill
        self.distillers = nn.ModuleList(distillers)
        self.teacher_weights = teacher_weights
        methods = self.methods()
        check_distillers(methods)
        check_pair(teacher, student, shares_queries=any(d.shares_queries for d in methods))
        if not methods:
            raise ConfigError("KDDETR: nothing to distil: model.points is empty and model.detrdistill is None. "
                             "Set KD-DETR points (kd_points() in configs/common/kd_detr.py) and/or DETRDistill "
                             "(detrdistill() in configs/common/detrdistill.py), or model.distillers.")
        for d in methods:
            d.check_num_classes(student.num_classes)
        for d in methods:
            d.bind(teacher, student)
        if teacher_weights:
            load_teacher(teacher, teacher_weights)
        elif not allow_untrained_teacher:
            raise ConfigError(
                "KDDETR: model.teacher_weights is empty, so the teacher would be randomly initialised and "
                "the student would learn noise. Set model.teacher_weights to a trained teacher checkpoint "
                "(e.g. output/synthetic/dino_r50/model_final.pth from configs/synthetic/dino_r50.py), or set "
                "model.allow_untrained_teacher=True if that is really what you want (tests do)."
            )
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()
        # The teacher is not part of the checkpoints: drop it when saving, and do not report
        # its keys as missing when loading (it was loaded from teacher_weights above).
        self.register_state_dict_post_hook(_drop_teacher_keys)
        self.register_load_state_dict_post_hook(_ignore_missing_teacher_keys)

    @classmethod
    def from_config(cls, cfg) -> Dict:
        """Build from a yacs config whose ``MODEL.KDDETR.MODEL_CONFIG`` is a LazyConfig file with
        ``model = L(KDDETR)(...)`` (lets ``detectron2.modeling.build_model`` build it)."""
        from detectron2.config import LazyConfig, instantiate

        lazy = LazyConfig.load(cfg.MODEL.KDDETR.MODEL_CONFIG).model
        return {k: instantiate(v) for k, v in lazy.items() if k != "_target_"}

    @property
    def device(self) -> torch.device:
        return self.student.device

    def train(self, mode: bool = True) -> "KDDETR":
        super().train(mode)
        self.teacher.eval()  # dropout/BN statistics of the teacher never change
        return self

    def methods(self) -> List[Distiller]:
        """The distillers, in the order they decode and add their losses: KD-DETR, DETRDistill, then
        ``distillers``."""
        return [d for d in (self.kd_detr, self.detrdistill) if d is not None] + list(self.distillers)

    def sample_points(self, generator: torch.Generator) -> Dict[str, Tensor]:
        """This step's random draws of every distiller (KD-DETR's points by point-set name; CPU tensors),
        drawn with ``generator``."""
        return merged((d.sample(generator) for d in self.methods()), "random draw")

    def forward(self, batched_inputs: List[Dict], distill_points: Optional[Dict[str, Tensor]] = None):
        """Training: dict of losses. Eval: the student's ``[{"instances": Instances}]``.

        ``distill_points``: the step's random points from :meth:`sample_points` (the trainer
        passes them so their random state is checkpointed); drawn here when None.
        """
        if not self.training:
            return self.student(batched_inputs)
        if distill_points is None:
            distill_points = self.sample_points(torch.default_generator)
        teacher = self.teacher_predictions(batched_inputs, distill_points)
        losses, s_out, targets, s_state = self.student_step(batched_inputs, teacher)
        step = DistillStep(teacher, s_state, s_out, targets, self.student.criterion, self.teacher.criterion.matcher)
        return merged([losses] + [d.losses(step) for d in self.methods()], "loss")

    def student_step(self, batched_inputs: List[Dict], teacher: TeacherStep
                     ) -> Tuple[Dict[str, Tensor], Dict[str, DecoderOutput], List[Dict[str, Tensor]], EncoderState]:
        """The student's side of a training step, without the distillation losses: it encodes the
        images and decodes its detection (and denoising) queries and every distiller's groups (KD-DETR's
        shared points, DETRDistill's teacher queries) in one masked decoder pass.

        Args:
            batched_inputs: the step's Detectron2 inputs, with ``instances``.
            teacher: the teacher's side of the same step (:meth:`teacher_predictions`); the shared
                points' positions and DETRDistill's group come from its queries.

        Returns:
            ``(losses, outputs, targets, state)``: the student's detection (and denoising) losses;
            its :class:`DecoderOutput` by group name (:mod:`kddetr.modeling.groups`), ``logits [L, B, N, K]``,
            ``boxes [L, B, N, 4]``; the targets, per image
            ``{"labels": [T], "boxes": [T, 4]}`` cxcywh in [0, 1]; its :class:`EncoderState`
            (``memory [B, S, D]``).
        """
        images, mask = self.student.preprocess_image(batched_inputs)
        targets = self.student.prepare_targets(batched_inputs)
        s_state = self.student.encode(images, mask)
        s_default = self.student.default_queries(s_state)
        extra = self.student_groups(teacher)
        losses, s_out = self.student.forward_train(s_state, s_default, targets, extra_groups=extra)
        return losses, s_out, targets, s_state

    def student_groups(self, teacher: TeacherStep) -> List[QueryGroup]:
        """Every distiller's groups of the student's fused pass, in the distillers' order."""
        return [g for d in self.methods() for g in d.student_groups(teacher)]

    @torch.no_grad()
    def teacher_predictions(self, batched_inputs: List[Dict], distill_points: Dict[str, Tensor]) -> TeacherStep:
        """The teacher's side of a step: its encoder, its own queries, and one decoder pass over
        every group its distillers ask for; in ``teacher_precision``, with float32 results."""
        dtype = TEACHER_PRECISIONS[self.teacher_precision]
        if dtype is None:
            return self._teacher_predictions(batched_inputs, distill_points)
        with torch.autocast(self.device.type, dtype=dtype):
            step = self._teacher_predictions(batched_inputs, distill_points)
        return _to_float32(step)

    def _teacher_predictions(self, batched_inputs: List[Dict], distill_points: Dict[str, Tensor]) -> TeacherStep:
        t_images, t_mask = self.teacher.preprocess_image(batched_inputs)
        t_state = self.teacher.encode(t_images, t_mask)
        t_default = self.teacher.default_queries(t_state)
        # Every query the student will share carries the teacher's reference (the place the teacher
        # decodes it at), so the student decodes it at the same place whatever its query space.
        t_default.reference = self.teacher.embed_queries(t_default)[2]
        t_queries: Dict[str, Queries] = {}
        for d in self.methods():
            for name, q in d.teacher_groups(t_default, distill_points).items():
                if t_queries.get(name, q) is not q:
                    raise ConfigError(f"KDDETR: two distillers ask the teacher to decode different groups named "
                                      f"'{name}'; name a distiller's groups after it (kddetr.modeling.groups).")
                t_queries[name] = q
        for q in t_queries.values():
            if q.reference is None:
                q.reference = self.teacher.embed_queries(q)[2]
        t_out = self.teacher.decode(t_state, [QueryGroup(g, q) for g, q in t_queries.items()])
        return TeacherStep(t_state, t_default, t_queries, dict(zip(t_queries, t_out)))


def merged(parts, what: str) -> Dict[str, Tensor]:
    """One dict of the distillers' ``parts`` (losses, random draws); a key two of them give is refused."""
    out: Dict[str, Tensor] = {}
    for part in parts:
        clash = out.keys() & part.keys()
        if clash:
            raise ConfigError(f"KDDETR: two distillers give the {what} {sorted(clash)[0]!r}; each needs keys of its "
                              "own.")
        out.update(part)
    return out


def check_distillers(methods: Sequence[nn.Module]) -> None:
    """Every distiller implements the interface and has a name of its own."""
    for d in methods:
        missing = missing_distiller_members(d)
        if missing:
            raise TypeError(f"KDDETR: {type(d).__name__} is not a distiller (missing {missing}); see Distiller in "
                            "projects/KDDETR/kddetr/distill/interface.py.")
    names = [d.name for d in methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"KDDETR: distillers need distinct names, got {names}")


def check_pair(teacher: nn.Module, student: nn.Module, shares_queries: bool = True) -> None:
    """Both models must implement the seam (:class:`~kddetr.modeling.seam.DistillableDETR`), predict
    the same classes and, when the student decodes the teacher's queries (``shares_queries``),
    decode queries of the same :class:`~kddetr.modeling.seam.QuerySpace`."""
    for role, m in (("teacher", teacher), ("student", student)):
        missing = missing_seam_members(m)
        if missing:
            raise TypeError(f"KDDETR: the {role} ({type(m).__name__}) does not implement the distillation seam "
                            f"(missing {missing}); see DistillableDETR in projects/KDDETR/kddetr/modeling/seam.py.")
    if teacher.num_classes != student.num_classes:
        raise ConfigError(
            f"KDDETR: the teacher predicts {teacher.num_classes} classes but the student {student.num_classes}. "
            "Distillation compares class distributions point by point, so both must be trained on the same "
            "classes: set model.student.num_classes (and model.teacher.num_classes) to the dataset's count."
        )
    t_space, s_space = teacher.query_space, student.query_space
    if shares_queries and t_space != s_space:
        raise ConfigError(
            f"KDDETR: the teacher ({type(teacher).__name__}) decodes queries in the space '{t_space}' but the "
            f"student ({type(student).__name__}) in '{s_space}', so they cannot decode the same distillation "
            "points. Box queries ('box_logits': DINO, DAB-DETR, DAB-Deformable DETR, Deformable DETR with "
            "two_stage=True) mix freely; learned query embeddings ('embedding:<family>:<dim>': Conditional DETR, "
            "plain Deformable DETR) only pair with the same family and width. Change one side (e.g. "
            "model.student.two_stage=True and model.student.with_box_refine=True for a Deformable DETR student "
            "of a box-query teacher)."
        )


def teacher_check_settings(check: Optional[Union[Dict, TeacherCheck]]) -> TeacherCheck:
    """``model.teacher_check`` as a :class:`TeacherCheck` (None: the defaults), its values checked."""
    if isinstance(check, TeacherCheck):
        return check
    fields = {f.name for f in dataclasses.fields(TeacherCheck)}
    unknown = sorted(set(check or {}) - fields)
    if unknown:
        raise ConfigError(f"KDDETR: model.teacher_check has no key {unknown[0]!r}; its keys are {sorted(fields)}")
    check = TeacherCheck(**(check or {}))
    if isinstance(check.images, bool) or not isinstance(check.images, int) or check.images < 0:
        raise ConfigError(f"KDDETR: model.teacher_check.images must be a whole number >= 0 (0 turns the check off), "
                         f"got {check.images!r}")
    if isinstance(check.min_ap, bool) or not isinstance(check.min_ap, (int, float)) or not 0 <= check.min_ap <= 100:
        raise ConfigError(f"KDDETR: model.teacher_check.min_ap must be a COCO AP between 0 and 100, "
                         f"got {check.min_ap!r}")
    return check


def load_teacher(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher``; every parameter and persistent buffer must be loaded
    with the right shape, or a clear error names the first offenders."""
    from ..config import directory_given

    if directory_given(path, "model.teacher_weights"):
        raise MissingInputError(f"KDDETR: {directory_given(path, 'model.teacher_weights')}")
    if "://" not in path and not os.path.isfile(path):
        raise MissingInputError(
            f"KDDETR: teacher checkpoint '{path}' does not exist. Train a teacher with its single-model config "
            "and set model.teacher_weights to its model_final.pth (synthetic data: configs/synthetic/dino_r50.py "
            "trains the DINO R50 teacher of the synthetic pairs to output/synthetic/dino_r50/; `make demo` "
            "trains its own DINO R18 teacher to output/demo/teacher/)."
        )
    state = read_state_dict(path, "model.teacher_weights")
    if state and all(k.startswith(TEACHER_PREFIX) or k.startswith("student.") for k in state):
        raise ConfigError(
            f"KDDETR: '{path}' is a distillation checkpoint (student.* keys), not a teacher. Point "
            "model.teacher_weights at the teacher's own checkpoint, or export the student first with "
            "tools/export_student.py to use it as a teacher."
        )
    heads = [f"{name}.weight" for name, m in teacher.named_modules()
             if isinstance(m, nn.Linear) and "class" in name and m.out_features == teacher.num_classes]
    counts = {state[k].shape[0] for k in heads if k in state and state[k].dim() == 2}
    if counts and counts != {teacher.num_classes}:
        raise CheckpointError(
            f"KDDETR: the teacher checkpoint '{path}' (model.teacher_weights) predicts {max(counts)} classes, but the "
            f"config's teacher and student (and their dataset) have {teacher.num_classes}. A teacher distils only the "
            f"classes it was trained on: train or convert a teacher on this dataset's {teacher.num_classes} classes "
            "(the user_dataset.* keys set every model.*.num_classes from the json), or train on the teacher's dataset.")
    unused = load_strict(teacher, path, state, key="model.teacher_weights",
                         fix="Set model.teacher_weights to a checkpoint trained with the teacher's single-model "
                         "config, or make model.teacher match the checkpoint.")
    logger.info(f"KDDETR: loaded all {len(teacher.state_dict())} teacher tensors from {path}"
                + (f" ({unused} extra keys in the file ignored)" if unused else ""))


def _to_float32(obj):
    """``obj`` (a dataclass, dict, list or tensor) with every floating-point tensor in float32."""
    if isinstance(obj, Tensor):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _to_float32(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_float32(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # EncoderState, Queries, DecoderOutput
        for f in dataclasses.fields(obj):
            setattr(obj, f.name, _to_float32(getattr(obj, f.name)))
    return obj


def _drop_teacher_keys(module, state_dict, prefix, local_metadata) -> None:
    for k in [k for k in state_dict if k.startswith(prefix + TEACHER_PREFIX)]:
        del state_dict[k]


def _ignore_missing_teacher_keys(module, incompatible_keys):
    keys = incompatible_keys.missing_keys
    keys[:] = [k for k in keys if not k.startswith(TEACHER_PREFIX) and f".{TEACHER_PREFIX}" not in k]
