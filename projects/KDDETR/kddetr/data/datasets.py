"""Registering a user's own COCO-format dataset without writing code."""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Dict, List, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from ..errors import InputError, MissingInputError

logger = logging.getLogger(__name__)


def _some(items: Sequence, k: int = 5) -> str:
    """``items`` for a message: the first ``k`` and how many there are in all."""
    shown = ", ".join(repr(i) for i in items[:k])
    return shown if len(items) <= k else f"{shown}, ... ({len(items)} in all)"


def _is_box(bbox) -> bool:
    """A COCO ``[x, y, w, h]`` of four finite numbers with a non-negative width and height (Detectron2
    drops empty boxes itself; a negative size would be silently turned into another box)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox):
        return False
    return bbox[2] >= 0 and bbox[3] >= 0


def _load_coco_json(json_file: str) -> Dict:
    """Parse ``json_file``; malformed json or a non-COCO layout is a ValueError naming the file."""
    try:
        with open(json_file, encoding="utf-8") as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(
            f"user_dataset: '{json_file}' is not valid json ({e}). Fix the file or point the user_dataset "
            "key at the right one."
        ) from e
    if not isinstance(coco, dict):
        raise InputError(f"user_dataset: '{json_file}' holds a json {type(coco).__name__}, not a COCO instances "
                         "object with 'images', 'annotations' and 'categories' lists.")
    missing = [k for k in ("images", "annotations", "categories") if k not in coco]
    if missing:
        raise InputError(
            f"user_dataset: '{json_file}' is not a COCO instances file: missing {missing}. "
            "It needs 'images', 'annotations' and 'categories' lists."
        )
    for key in ("images", "annotations", "categories"):
        entries = coco[key]
        fields = {"images": ("id", "file_name"), "annotations": ("id", "image_id", "category_id", "bbox"),
                  "categories": ("id", "name")}[key]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError(f"user_dataset: '{key}' in '{json_file}' must be a list of objects.")
        bad = [i for i, e in enumerate(entries) if any(f not in e for f in fields)]
        if bad:
            raise InputError(f"user_dataset: {len(bad)} entries of '{key}' in '{json_file}' lack one of {fields} "
                             f"(positions {_some(bad)}). Fix or remove them in the json.")
    return coco


def check_user_coco(coco: Dict, json_file: str, image_root: str) -> None:
    """Refuse what Detectron2 would load silently wrong or fail on hours into training.

    * an annotation whose ``bbox`` is not four finite numbers with a positive width and height
      (Detectron2 would turn a negative width into another box),
    * an annotation whose ``category_id`` is not among ``categories`` or whose ``image_id`` is
      not among ``images``,
    * an image of ``images`` whose file is not under ``image_root`` (an existence check, no decoding).

    Each is a ValueError (FileNotFoundError for missing images) naming the file, the first few
    offending ids, how many there are, and the fix.
    """
    category_ids = {c["id"] for c in coco["categories"]}
    image_ids = {img["id"] for img in coco["images"]}
    annos = coco["annotations"]

    def _ids(bad: List[Dict]) -> str:
        return _some([a["id"] for a in bad])

    bad = [a for a in annos if not _is_box(a["bbox"])]
    if bad:
        raise InputError(
            f"user_dataset: {len(bad)} of {len(annos)} annotations in '{json_file}' have a bbox that is not "
            f"[x, y, width, height] with width >= 0 and height >= 0: annotation ids {_ids(bad)} "
            f"(first bbox: {bad[0]['bbox']}). Fix or remove these annotations in the json."
        )
    bad = [a for a in annos if a["category_id"] not in category_ids]
    if bad:
        unknown = _some(sorted({a["category_id"] for a in bad}, key=str))
        known = _some(sorted(category_ids, key=str), 10)
        raise InputError(
            f"user_dataset: {len(bad)} annotations in '{json_file}' have a category_id that is not among its "
            f"'categories' (ids {known}): category_id {unknown} in annotation ids {_ids(bad)}. "
            "Add the category to 'categories' or fix or remove these annotations in the json."
        )
    bad = [a for a in annos if a["image_id"] not in image_ids]
    if bad:
        raise InputError(
            f"user_dataset: {len(bad)} annotations in '{json_file}' refer to an image_id that is not among its "
            f"'images': image_id {_some(sorted({a['image_id'] for a in bad}, key=str))} in annotation ids "
            f"{_ids(bad)}. Fix or remove these annotations in the json."
        )
    missing = [img["file_name"] for img in coco["images"]
               if not os.path.isfile(os.path.join(image_root, img["file_name"]))]
    if missing:
        raise MissingInputError(
            f"user_dataset: {len(missing)} of {len(coco['images'])} images listed in '{json_file}' are not in "
            f"'{image_root}': {_some(missing)}. Point the *_images key at the folder the json's file_name "
            "values are relative to, or remove these images (and their annotations) from the json."
        )


def register_user_coco(name: str, json_file: str, image_root: str) -> List[str]:
    """Register ``name`` from a COCO instances json and an image folder; returns the class names.

    The dataset is checked here, before anything is built, rather than when a bad entry is
    sampled: a missing path, malformed json, a json that is not COCO instances, a box with a
    non-positive width or height, an unknown category or image id, or a listed image file that
    does not exist is a clear error naming the file and the offending ids (see :func:`check_user_coco`).
    """
    if not os.path.isfile(json_file):
        raise MissingInputError(f"user_dataset: annotation file '{json_file}' does not exist.")
    if not os.path.isdir(image_root):
        raise MissingInputError(f"user_dataset: image folder '{image_root}' does not exist.")
    coco = _load_coco_json(json_file)
    check_user_coco(coco, json_file, image_root)
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
    from detectron2.data.common import DatasetFromList, ToIterableDataset
    from detectron2.utils import comm

    from .samplers import ResumableTrainingSampler, SeededMapDataset

    try:
        kwargs = {k: instantiate(loader_cfg[k]) for k in loader_cfg.keys() if k != "_target_"}
    except AssertionError as e:
        if "No valid data found" not in str(e):
            raise
        raise InputError(
            f"Dataset '{loader_cfg.dataset.names}' has no box annotations: it cannot be used for "
            "training. Point dataloader.train.dataset.names (or user_dataset.train_json) at an "
            "instances json with annotations."
        ) from e
    sampler = kwargs.get("sampler")
    if sampler is None:
        sampler = kwargs["sampler"] = ResumableTrainingSampler(len(kwargs["dataset"]))
    if kwargs.get("mapper") is not None and isinstance(kwargs.get("dataset"), list):
        # Map with per-sample seeds, and shard the sample stream across loader workers so that
        # batch k holds samples k*b .. k*b + b - 1 of this process's stream whatever the number of
        # workers: a run resumed at any iteration then gets the batches (and augmentations) of an
        # uninterrupted one. With aspect-ratio grouping the loader interleaves single samples of
        # the workers and groups them afterwards, so worker w takes samples w, w + W, ...; without
        # it each worker makes whole batches, so it takes whole batches.
        mapped = SeededMapDataset(DatasetFromList(kwargs["dataset"], copy=False), kwargs["mapper"])
        per_process = max(1, kwargs.get("total_batch_size", 1) // comm.get_world_size())
        chunk = 1 if kwargs.get("aspect_ratio_grouping", True) else per_process
        kwargs["dataset"] = ToIterableDataset(mapped, sampler, shard_chunk_size=chunk)
        kwargs["mapper"] = kwargs["sampler"] = None
    target = loader_cfg._target_
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    return target(**kwargs), sampler
