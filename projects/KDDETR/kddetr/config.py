"""Loading LazyConfig files the way every entry point does, and the checks run before anything is built.

:func:`load_config` is the one way ``train_net.py`` and every tool read a config file with
``key=value`` overrides; :func:`add_kddetr_config` adds the one yacs key ``DefaultPredictor``
needs to serve an exported student.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
from typing import Iterator, List, Optional, Sequence

import torch
from detectron2.config import CfgNode, LazyConfig
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


def load_config(path: str, opts: Sequence[str] = ()) -> DictConfig:
    """Load the LazyConfig file ``path``, refuse overrides whose key does not exist (naming close
    matches), and apply ``opts`` (``key=value`` strings, Detectron2's override syntax)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' does not exist. Paths are relative to the directory you run "
                                "from; the configs live in configs/ at the repository root.")
    cfg = LazyConfig.load(path)
    opts = list(opts)
    check_override_keys(cfg, opts, path)
    return LazyConfig.apply_overrides(cfg, opts)


def config_argument_parser(description: str, config_help: str,
                           opts_help: str = "key=value config overrides") -> argparse.ArgumentParser:
    """The command line every tool shares with ``train_net.py``: ``--config-file FILE`` and trailing
    ``key=value`` overrides (for :func:`load_config`); the tool adds its own options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help=config_help)
    parser.add_argument("opts", nargs="*", help=opts_help)
    return parser


def add_kddetr_config(cfg: CfgNode) -> None:
    """Add ``MODEL.KDDETR.MODEL_CONFIG`` to a yacs config: the LazyConfig file whose ``model`` the
    ``KDDETRStudent`` (or ``KDDETR``) meta-architecture instantiates."""
    cfg.MODEL.KDDETR = CfgNode()
    cfg.MODEL.KDDETR.MODEL_CONFIG = ""


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
    from .data import register_user_coco

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


def check_device(device: str, num_gpus: int = 1) -> None:
    """``train.device`` must exist here; ``--num-gpus N`` with CUDA needs N visible GPUs."""
    if torch.device(device).type != "cuda":
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"train.device='{device}' but CUDA is not available on this machine. "
                           "Add train.device=cpu to the command line to run on the CPU.")
    if num_gpus > torch.cuda.device_count():
        raise RuntimeError(f"--num-gpus {num_gpus} but this machine has {torch.cuda.device_count()} visible CUDA "
                           "devices. Lower --num-gpus (or check CUDA_VISIBLE_DEVICES).")


_IMAGENET_BACKBONE = re.compile(r"R-(\d+)\.pkl$")


def _missing_init_checkpoint(path: str) -> Optional[str]:
    """What is wrong with ``train.init_checkpoint`` and how to fix it, or None (URLs and
    ``detectron2://`` paths are fetched by the checkpointer)."""
    if not path or "://" in path or os.path.isfile(path):
        return None
    backbone = _IMAGENET_BACKBONE.search(path)
    if backbone:
        return (f"train.init_checkpoint '{path}' (the ImageNet ResNet-{backbone.group(1)} backbone) does not exist: "
                f"convert torchvision's resnet{backbone.group(1)} ImageNet weights with detectron2's "
                f"tools/convert-torchvision-to-d2.py into {path}, or set train.init_checkpoint='' to start from "
                "random weights.")
    return (f"train.init_checkpoint '{path}' does not exist: point it at a checkpoint file, or set "
            "train.init_checkpoint='' to start from random weights.")


def check_init_checkpoint(path: str) -> None:
    """A local init checkpoint must exist (URLs and detectron2:// paths are fetched by the checkpointer)."""
    problem = _missing_init_checkpoint(path)
    if problem:
        raise FileNotFoundError(problem)


def _missing_datasets(cfg: DictConfig) -> List[str]:
    """Registered datasets of the loaders whose annotation json is not on disk (datasets generated
    on first use, such as the synthetic ones, are skipped)."""
    from detectron2.data import MetadataCatalog

    coco, problems = [], []
    for split in ("train", "test"):
        loader = cfg.dataloader.get(split)
        names = OmegaConf.select(loader, "dataset.names") if loader is not None else None
        for name in [names] if isinstance(names, str) else list(names or []):
            meta = MetadataCatalog.get(name)
            json_file = meta.get("json_file")
            if not json_file or meta.get("generated_on_first_use") or os.path.isfile(json_file):
                continue
            (coco if name.startswith("coco_") else problems).append(f"'{name}' needs {json_file}")
    if coco:
        root = os.path.dirname(os.path.dirname(json_file)) or "."
        problems.append(
            f"COCO is not on disk ({'; '.join(coco)}): put COCO 2017 (train2017/, val2017/, annotations/) in {root}/ "
            "or set DETECTRON2_DATASETS to the folder that holds coco/; or train on your own COCO-format data "
            "with the user_dataset.* keys (README).")
    return [p if p.startswith("COCO") else f"dataset {p}, which does not exist." for p in problems]


def check_inputs(cfg: DictConfig, eval_only: bool = False) -> None:
    """Every file the run will read exists: the datasets' annotations, the teacher checkpoint of a
    distillation config (training only) and ``train.init_checkpoint``. Raises one
    FileNotFoundError that lists each missing file and how to get it, before anything is built."""
    problems = _missing_datasets(cfg)
    teacher = OmegaConf.select(cfg, "model.teacher_weights", default=None)
    if teacher and not eval_only and "://" not in teacher and not os.path.isfile(teacher):
        teacher_cfg = OmegaConf.select(cfg, "model.teacher._target_", default=None)
        family = getattr(teacher_cfg, "__name__", str(teacher_cfg).rsplit(".", 1)[-1])
        problems.append(
            f"the teacher checkpoint '{teacher}' (model.teacher_weights) does not exist: train the teacher ({family}) "
            "with its single-model config in configs/ and copy its model_final.pth there, or convert a detrex "
            "checkpoint with tools/convert_detrex.py; or set model.teacher_weights=<path>.")
    init = _missing_init_checkpoint(cfg.train.init_checkpoint)
    if init:
        problems.append(init)
    if problems:
        items = " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)) if len(problems) > 1 else problems[0]
        raise FileNotFoundError(f"Missing input{'s' if len(problems) > 1 else ''}: {items} "
                                "Relative paths resolve from the directory you run train_net.py in.")


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
