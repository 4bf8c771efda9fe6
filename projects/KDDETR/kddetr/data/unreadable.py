"""Unreadable images: on 118k images one truncated file is ordinary, and it must not end a run hours in.

The mapper turns an image it cannot decode into a *marker* (its dataset dict without the image, with
``UNREADABLE`` set to the reason) instead of raising. The marker keeps its slot in the sample stream, so
nothing is replaced by another image and a resumed run sees the same batches. Training drops markers
from the batch (:class:`UnreadableImages`: each file logged once, counted in the metrics, the run stopped
past ``train.max_unreadable_fraction`` of the images seen); evaluation reports them and evaluates the
rest (:class:`SkipUnreadable`, :class:`ReadableOnlyEvaluator`).
"""
from __future__ import annotations

import inspect
import logging
from typing import Dict, List, Sequence

from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from torch import nn

from ..errors import InputError

logger = logging.getLogger(__name__)

#: the key of a marker dict: why its image could not be read
UNREADABLE = "unreadable"
#: fewer skipped images than this never stop a run (a fraction of the first batches would)
MIN_STOP_COUNT = 10


def unreadable_marker(dataset_dict: Dict, reason: str) -> Dict:
    """The marker of an image that could not be read: what identifies and groups it, and the reason."""
    keep = ("file_name", "image_id", "height", "width")
    return {**{k: dataset_dict[k] for k in keep if k in dataset_dict}, UNREADABLE: reason}


class UnreadableImages:
    """The training side: drops the markers of a batch and stops when too many images were unreadable.

    Args:
        max_fraction: the run stops when more than this fraction of the images this process has seen
            (and at least ``MIN_STOP_COUNT``) could not be read (``train.max_unreadable_fraction``).
    """

    def __init__(self, max_fraction: float = 0.01):
        if not 0 <= max_fraction <= 1:
            raise ValueError(f"train.max_unreadable_fraction must be between 0 and 1, got {max_fraction}")
        self.max_fraction = max_fraction
        self.seen, self.skipped = 0, 0
        self._logged: set = set()

    def drop(self, batch: List[Dict]) -> List[Dict]:
        """``batch`` without its unreadable images (each logged the first time it is met)."""
        self.seen += len(batch)
        bad = [d for d in batch if UNREADABLE in d]
        if not bad:
            return batch
        self.skipped += len(bad)
        for d in bad:
            if d.get("file_name") not in self._logged:
                self._logged.add(d.get("file_name"))
                logger.warning(f"{d[UNREADABLE]}: skipped ({self.skipped} of the {self.seen} images seen so far)")
        if self.skipped > max(MIN_STOP_COUNT, self.max_fraction * self.seen):
            raise InputError(
                f"{self.skipped} of the {self.seen} training images seen could not be read (more than "
                f"train.max_unreadable_fraction={self.max_fraction}), the last: {bad[-1][UNREADABLE]}. Repair or "
                "remove them from the annotation json, or raise train.max_unreadable_fraction.")
        kept = [d for d in batch if UNREADABLE not in d]
        if not kept:
            names = ", ".join(str(d.get("file_name")) for d in bad)
            raise InputError(f"Every image of this process's batch is unreadable ({names}): repair or remove them "
                             "from the annotation json.")
        return kept

    def state_dict(self) -> Dict[str, int]:
        return {"seen": self.seen, "skipped": self.skipped}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.seen, self.skipped = int(state.get("seen", 0)), int(state.get("skipped", 0))


class SkipUnreadable(nn.Module):
    """``model`` for inference over inputs that may hold markers: it predicts the readable images and
    returns an empty dict for each marker (``ReadableOnlyEvaluator`` leaves those out)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        # the model's mode, not a new module's (training): inference_on_dataset restores the wrapper's mode on
        # exit, recursively, and a frozen teacher must stay in eval mode
        self.training = model.training

    def forward(self, inputs: Sequence[Dict]) -> List[Dict]:
        readable = [d for d in inputs if UNREADABLE not in d]
        outputs = iter(self.model(readable) if readable else [])
        return [{} if UNREADABLE in d else next(outputs) for d in inputs]


class ReadableOnlyEvaluator(DatasetEvaluator):
    """``evaluator`` on the readable images only: markers are reported (once, after the loop) and left
    out, and an evaluator that takes ``img_ids`` (COCOEvaluator) evaluates the images it was given."""

    def __init__(self, evaluator: DatasetEvaluator):
        self.evaluator = evaluator
        self.unreadable: List[str] = []
        self.image_ids: List = []

    def reset(self) -> None:
        self.evaluator.reset()
        self.unreadable, self.image_ids = [], []

    def process(self, inputs, outputs) -> None:
        pairs = [(i, o) for i, o in zip(inputs, outputs) if UNREADABLE not in i]
        self.unreadable += [i[UNREADABLE] for i in inputs if UNREADABLE in i]
        self.image_ids += [i["image_id"] for i, _ in pairs if "image_id" in i]
        if pairs:
            self.evaluator.process([i for i, _ in pairs], [o for _, o in pairs])

    def evaluate(self):
        unreadable = [u for part in comm.all_gather(self.unreadable) for u in part]
        if not unreadable:
            return self.evaluator.evaluate()
        image_ids = [i for part in comm.all_gather(self.image_ids) for i in part]
        logger.warning(f"{len(unreadable)} test images could not be read and are not evaluated: "
                       + "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""))
        if "img_ids" in inspect.signature(self.evaluator.evaluate).parameters:
            return self.evaluator.evaluate(img_ids=image_ids)
        return self.evaluator.evaluate()
