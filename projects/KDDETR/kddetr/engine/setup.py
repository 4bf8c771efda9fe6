"""Config checks and conveniences applied by train_net.py before anything is built."""
from __future__ import annotations

import difflib
import logging
import os
from typing import Iterator, List, Sequence

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

logger = logging.getLogger(__name__)
_MISSING = object()


def _walk_keys(node, prefix: str = "") -> Iterator[str]:
    if isinstance(node, DictConfig):
        for k in node.keys():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key
            yield from _walk_keys(node._get_node(k), key)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            key = f"{prefix}.{i}"
            yield key
            yield from _walk_keys(node._get_node(i), key)


def check_override_keys(cfg: DictConfig, overrides: Sequence[str], config_file: str) -> None:
    """Refuse ``key=value`` overrides whose key does not exist, naming close matches."""
    known = None
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING:
            continue
        if known is None:
            known = list(_walk_keys(cfg))
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"Config key '{key}' does not exist in {config_file}.{hint} "
                       "Every run writes the full key list to train.output_dir/config.yaml.")


def _num_classes_keys(node) -> List[str]:
    """Paths of every ``num_classes`` key under ``node`` that holds a value, not an
    interpolation such as ``"${..num_classes}"`` (model, or teacher and student)."""
    keys = []
    for key in _walk_keys(node):
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(node, parent_key) if parent_key else node
        if leaf == "num_classes" and not OmegaConf.is_interpolation(parent, leaf):
            keys.append(key)
    return keys


def set_num_classes(node, num_classes: int) -> List[str]:
    """Set every ``num_classes`` of ``node``, leaving interpolations pointing at them; returns the paths."""
    keys = _num_classes_keys(node)
    for key in keys:
        OmegaConf.update(node, key, num_classes, merge=False)
    return keys


def apply_user_dataset(cfg: DictConfig) -> None:
    """Register ``cfg.user_dataset`` (if set) and point loaders, evaluator and classes at it."""
    from ..data import register_user_coco

    ud = cfg.get("user_dataset")
    if not ud or not (ud.get("train_json") or ud.get("test_json")):
        return
    classes = None
    for split, loader in (("train", "train"), ("test", "test")):
        json_file, images = ud.get(f"{split}_json"), ud.get(f"{split}_images")
        if not json_file:
            continue
        if not images:
            raise ValueError(f"user_dataset.{split}_json is set but user_dataset.{split}_images is not.")
        names = register_user_coco(f"user_{split}", json_file, images)
        if classes is not None and names != classes:
            raise ValueError(f"user_dataset: train and test jsons have different categories: {classes} vs {names}")
        classes = names
        cfg.dataloader[loader].dataset.names = f"user_{split}"
    changed = set_num_classes(cfg.model, len(classes))
    logger.info(f"user_dataset: {len(classes)} classes; set {', '.join('model.' + c for c in changed)}")


def check_device(device: str) -> None:
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device='{device}' but CUDA is not available on this machine. "
                           "Add train.device=cpu to the command line to run on the CPU.")


def check_init_checkpoint(path: str) -> None:
    """A local init checkpoint must exist (URLs and detectron2:// paths are fetched by the checkpointer)."""
    if path and "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(f"train.init_checkpoint '{path}' does not exist. Point it at a checkpoint file, "
                                "or set train.init_checkpoint='' to start from random weights.")


def model_num_classes(model_cfg) -> List[int]:
    """Every ``num_classes`` value in the model config (interpolations resolve to these)."""
    values = [OmegaConf.select(model_cfg, key) for key in _num_classes_keys(model_cfg)]
    return [v for v in values if isinstance(v, int)]


def check_num_classes(cfg: DictConfig) -> None:
    """The training dataset's classes must match the model's ``num_classes``."""
    from detectron2.data import MetadataCatalog

    names = cfg.dataloader.train.dataset.names
    name = names if isinstance(names, str) else names[0]
    classes = MetadataCatalog.get(name).get("thing_classes")
    if classes is None:
        return
    for n in set(model_num_classes(cfg.model)):
        if n != len(classes):
            raise ValueError(
                f"Dataset '{name}' has {len(classes)} classes but the model has num_classes={n}. "
                f"Set model.num_classes={len(classes)} (or use user_dataset.* keys, which set it for you)."
            )
