"""Serving a distilled student with Detectron2's ``DefaultPredictor``.

``tools/export_student.py`` writes three files next to each other:

* ``student.pth``: the student's weights only (``{"model": state_dict}``),
* ``student_model.yaml``: the student's LazyConfig (``model = L(DINO)(...)``),
* ``predictor.yaml``: a yacs config for ``DefaultPredictor`` that points at both.

Then::

    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor
    from kddetr.config import add_kddetr_config

    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.merge_from_file("output/.../export/predictor.yaml")
    instances = DefaultPredictor(cfg)(bgr_image)["instances"]
"""
from __future__ import annotations

import os
from typing import Tuple

from detectron2.config import CfgNode as CN
from detectron2.config import LazyConfig, instantiate
from detectron2.modeling import META_ARCH_REGISTRY
from omegaconf import DictConfig, OmegaConf

from .checkpoint import student_state_dict


@META_ARCH_REGISTRY.register()
def KDDETRStudent(cfg: CN):  # noqa: N802  (a meta-architecture name, built like a class)
    """Build the detector described by ``cfg.MODEL.KDDETR.MODEL_CONFIG`` (a LazyConfig file)."""
    path = cfg.MODEL.KDDETR.MODEL_CONFIG
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.KDDETR.MODEL_CONFIG='{path}' is not a file. It should be the student_model.yaml that "
            "tools/export_student.py wrote next to predictor.yaml."
        )
    return instantiate(LazyConfig.load(path).model)


def _test_resize(cfg: DictConfig) -> Tuple[int, int]:
    """(min size, max size) of the test loader's ResizeShortestEdge."""
    for aug in cfg.dataloader.test.mapper.augmentation:
        if "short_edge_length" in aug:
            short = aug.short_edge_length
            short = short if isinstance(short, int) else short[-1]
            return int(short), int(aug.get("max_size", 1333))
    return 800, 1333


def export_student(cfg: DictConfig, checkpoint: str, output_dir: str, device: str = "cpu") -> str:
    """Write ``student.pth``, ``student_model.yaml`` and ``predictor.yaml``; returns the last path."""
    import torch

    os.makedirs(output_dir, exist_ok=True)
    output_dir = os.path.abspath(output_dir)
    weights = os.path.join(output_dir, "student.pth")
    torch.save({"model": student_state_dict(checkpoint)}, weights)
    model_yaml = os.path.join(output_dir, "student_model.yaml")
    LazyConfig.save(OmegaConf.create({"model": cfg.model.student}), model_yaml)

    pred = CN()
    pred.VERSION = 2
    pred.MODEL = CN()
    pred.MODEL.META_ARCHITECTURE = "KDDETRStudent"
    pred.MODEL.WEIGHTS = weights
    pred.MODEL.DEVICE = device
    pred.MODEL.KDDETR = CN()
    pred.MODEL.KDDETR.MODEL_CONFIG = model_yaml
    pred.INPUT = CN()
    pred.INPUT.FORMAT = cfg.model.student.get("input_format", "RGB")
    pred.INPUT.MIN_SIZE_TEST, pred.INPUT.MAX_SIZE_TEST = _test_resize(cfg)
    names = cfg.dataloader.test.dataset.names
    pred.DATASETS = CN()
    pred.DATASETS.TEST = (names if isinstance(names, str) else names[0],)
    path = os.path.join(output_dir, "predictor.yaml")
    with open(path, "w") as f:
        f.write(pred.dump())
    return path
