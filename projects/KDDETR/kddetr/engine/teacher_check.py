"""The teacher is checked before the student is trained on it: its COCO AP on a small, fixed slice of
the test set must reach a floor. A teacher converted with another class order, or from another
dataset, loads strictly and still predicts nothing useful; this finds it in seconds, not hours in."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import List, Optional

from detectron2.config import instantiate
from detectron2.data import build_detection_test_loader
from detectron2.evaluation import DatasetEvaluator, inference_on_dataset
from detectron2.utils import comm
from torch import nn

from ..data.unreadable import UNREADABLE, SkipUnreadable
from ..errors import Refusal

logger = logging.getLogger(__name__)


@dataclass
class TeacherCheck:
    """``model.teacher_check``: evaluate the loaded teacher on the first ``images`` images of the test
    set (``dataloader.test``) with ``dataloader.evaluator`` and stop when its box AP is below ``min_ap``
    (COCO AP, 0-100). ``images=0`` turns the check off."""

    images: int = 50
    min_ap: float = 1.0


class TeacherCheckError(Refusal, ValueError):
    """The teacher predicts too little on the slice: the run stops before the first step."""


class _SliceEvaluator(DatasetEvaluator):
    """``evaluator`` restricted to the images it was given: a COCOEvaluator otherwise counts every
    image of the dataset that was not evaluated as missed."""

    def __init__(self, evaluator: DatasetEvaluator, image_ids: List):
        self.evaluator, self.image_ids = evaluator, image_ids

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs, outputs) -> None:
        pairs = [(i, o) for i, o in zip(inputs, outputs) if UNREADABLE not in i]
        unreadable = {x["image_id"] for x in inputs if UNREADABLE in x}  # not evaluated, not counted as missed
        self.image_ids = [i for i in self.image_ids if i not in unreadable]
        if pairs:
            self.evaluator.process([i for i, _ in pairs], [o for _, o in pairs])

    def evaluate(self):
        return self.evaluator.evaluate(img_ids=self.image_ids)


def teacher_slice_ap(teacher: nn.Module, dataloader_cfg, images: int) -> float:
    """Box AP (0-100) of ``teacher`` (eval mode) on the first ``images`` images of ``dataloader_cfg.test``,
    by ``dataloader_cfg.evaluator``; the same value on every process."""
    dicts = instantiate(dataloader_cfg.test.dataset)[:images]
    loader = build_detection_test_loader(dataset=dicts, mapper=instantiate(dataloader_cfg.test.mapper),
                                         num_workers=0)
    evaluator_cfg = copy.deepcopy(dataloader_cfg.evaluator)
    if "output_dir" in evaluator_cfg:  # the run's own evaluation writes there, not this check
        evaluator_cfg.output_dir = None
    evaluator = _SliceEvaluator(instantiate(evaluator_cfg), [d["image_id"] for d in dicts])
    # in eval mode; the results are gathered on the main process
    results = inference_on_dataset(SkipUnreadable(teacher), loader, evaluator)
    # NaN when nothing was predicted (or evaluated): never above a floor
    ap = float((results or {}).get("bbox", {}).get("AP", float("nan"))) if comm.is_main_process() else 0.0
    return comm.all_gather(ap)[0]  # every process decides on the main process's value


def check_teacher(teacher: nn.Module, check: Optional[TeacherCheck], dataloader_cfg, weights: str) -> Optional[float]:
    """Evaluate ``teacher`` on the slice and log its AP; raise :class:`TeacherCheckError` below the floor.
    Returns the AP, or None when the check is off (``check`` None or ``images=0``)."""
    if check is None or check.images == 0:
        logger.info("Teacher check off (model.teacher_check.images=0)")
        return None
    if "evaluator" not in dataloader_cfg:
        logger.info("Teacher check skipped: the config has no dataloader.evaluator")
        return None
    ap = teacher_slice_ap(teacher, dataloader_cfg, check.images)
    names = dataloader_cfg.test.dataset.get("names", "the test set")
    logger.info(f"Teacher check: {ap:.1f} AP on the first {check.images} images of {names} "
                f"(floor model.teacher_check.min_ap={check.min_ap})")
    if not ap >= check.min_ap:  # NaN included
        raise TeacherCheckError(
            f"KDDETR: the teacher ({weights}) scores {ap:.2f} AP on the first {check.images} images "
            f"of {names}, below model.teacher_check.min_ap={check.min_ap}. It loaded, but predicts nothing useful "
            "here: a checkpoint trained on another dataset, converted with another class order, or not trained. "
            "Check model.teacher_weights and that the dataset's classes are the teacher's, in its order; "
            "model.teacher_check.images=0 skips this check.")
    return ap
