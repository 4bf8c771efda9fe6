"""Registering a user's own COCO-format dataset without writing code."""
from __future__ import annotations

import json
import logging
import os
from typing import List

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

logger = logging.getLogger(__name__)


def register_user_coco(name: str, json_file: str, image_root: str) -> List[str]:
    """Register ``name`` from a COCO instances json and an image folder; returns the class names.

    Raises a clear error when a path is missing or the json has no annotations.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"user_dataset: annotation file '{json_file}' does not exist.")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"user_dataset: image folder '{image_root}' does not exist.")
    with open(json_file) as f:
        coco = json.load(f)
    missing = [k for k in ("images", "annotations", "categories") if k not in coco]
    if missing:
        raise ValueError(
            f"user_dataset: '{json_file}' is not a COCO instances file: missing {missing}. "
            "It needs 'images', 'annotations' and 'categories' lists."
        )
    classes = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {"thing_classes": classes}, json_file, image_root)
    logger.info(f"Registered '{name}': {len(coco['images'])} images, {len(coco['annotations'])} boxes, "
                f"{len(classes)} classes from {json_file}")
    return classes


def build_train_loader(loader_cfg):
    """Instantiate a train loader config with a :class:`ResumableTrainingSampler` (unless the
    config names a sampler); returns ``(loader, sampler)``. A dataset without boxes gets a
    clear error.

    Detectron2 drops images without annotations and then asserts that something is left;
    that failure is translated here rather than loading the dataset a second time to check.
    """
    from detectron2.config import instantiate

    from .samplers import ResumableTrainingSampler

    try:
        kwargs = {k: instantiate(loader_cfg[k]) for k in loader_cfg.keys() if k != "_target_"}
    except AssertionError as e:
        if "No valid data found" not in str(e):
            raise
        raise ValueError(
            f"Dataset '{loader_cfg.dataset.names}' has no box annotations: it cannot be used for "
            "training. Point dataloader.train.dataset.names (or user_dataset.train_json) at an "
            "instances json with annotations."
        ) from e
    sampler = kwargs.get("sampler")
    if sampler is None:
        sampler = kwargs["sampler"] = ResumableTrainingSampler(len(kwargs["dataset"]))
    target = loader_cfg._target_
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    return target(**kwargs), sampler
