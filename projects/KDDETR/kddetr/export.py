"""Serving a distilled student with Detectron2's ``DefaultPredictor``.

``tools/export_student.py`` checks that the distillation checkpoint matches the pair config
(every student tensor, every shape) and writes three files next to each other:

* ``student.pth``: the student's weights only (``{"model": state_dict}``),
* ``student_model.yaml``: the student's LazyConfig (``model = L(DINO)(...)``),
* ``predictor.yaml``: a yacs config for ``DefaultPredictor`` that points at both.

Then::

    from detectron2.config import get_cfg
    from kddetr.config import add_kddetr_config
    from kddetr.export import StudentPredictor  # a DefaultPredictor that checks its input

    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.merge_from_file("output/.../export/predictor.yaml")
    instances = StudentPredictor(cfg)(bgr_image)["instances"]  # H x W x 3 uint8, BGR
"""
from __future__ import annotations

import os
from typing import Any, Dict, Tuple

import numpy as np
from detectron2.config import CfgNode as CN
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import DefaultPredictor
from detectron2.modeling import META_ARCH_REGISTRY
from omegaconf import DictConfig, OmegaConf

from .checkpoint import load_strict, read_state_dict, student_state_dict


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


def eval_resize(cfg: DictConfig) -> Tuple[int, int]:
    """(min size, max size) of the test loader's ResizeShortestEdge."""
    for aug in cfg.dataloader.test.mapper.augmentation:
        if "short_edge_length" in aug:
            short = aug.short_edge_length
            short = short if isinstance(short, int) else short[-1]
            return int(short), int(aug.get("max_size", 1333))
    return 800, 1333


def served_model(cfg: DictConfig, checkpoint: str):
    """The config of the model an export serves (a pair's student, or the single model) and its
    tensors in ``checkpoint`` (a distillation checkpoint's ``student.*``, or the whole file)."""
    if "student" in cfg.model:
        return cfg.model.student, student_state_dict(checkpoint)
    return cfg.model, read_state_dict(checkpoint, "--checkpoint")


def export_student(cfg: DictConfig, checkpoint: str, output_dir: str, device: str = "cpu") -> str:
    """Write ``student.pth``, ``student_model.yaml`` and ``predictor.yaml``; returns the last path.

    A distillation config exports its student from a distillation checkpoint; a single-model config
    (a teacher, or a student trained alone) exports that model from its own checkpoint, so every
    model is served the same way."""
    import torch

    os.makedirs(output_dir, exist_ok=True)
    output_dir = os.path.abspath(output_dir)
    weights = os.path.join(output_dir, "student.pth")
    model_cfg, state = served_model(cfg, checkpoint)
    # the served model must be exactly the trained one: every tensor, every shape
    load_strict(instantiate(model_cfg), checkpoint, state, key="--checkpoint",
                fix="Export with the config the checkpoint was trained with (and the same key=value overrides).")
    torch.save({"model": state}, weights)
    model_yaml = os.path.join(output_dir, "student_model.yaml")
    LazyConfig.save(OmegaConf.create({"model": model_cfg}), model_yaml)

    pred = CN()
    pred.VERSION = 2
    pred.MODEL = CN()
    pred.MODEL.META_ARCHITECTURE = "KDDETRStudent"
    pred.MODEL.WEIGHTS = weights
    pred.MODEL.DEVICE = device
    pred.MODEL.KDDETR = CN()
    pred.MODEL.KDDETR.MODEL_CONFIG = model_yaml
    pred.INPUT = CN()
    pred.INPUT.FORMAT = model_cfg.get("input_format", "RGB")
    pred.INPUT.MIN_SIZE_TEST, pred.INPUT.MAX_SIZE_TEST = eval_resize(cfg)
    names = cfg.dataloader.test.dataset.names
    pred.DATASETS = CN()
    pred.DATASETS.TEST = (names if isinstance(names, str) else names[0],)
    path = os.path.join(output_dir, "predictor.yaml")
    with open(path, "w") as f:
        f.write(pred.dump())
    return path


_INPUT_CONTRACT = "one H x W x 3 uint8 numpy array in BGR order, as cv2.imread returns it"


class StudentPredictor(DefaultPredictor):
    """:class:`DefaultPredictor` for the exported student that checks its input before using it.

    Build it like ``DefaultPredictor`` from the ``predictor.yaml`` that ``tools/export_student.py``
    writes. Input contract: one image, a numpy array of shape (H, W, 3) and dtype ``uint8`` with
    its channels in **BGR** order, as ``cv2.imread`` returns it. It is converted to the model's
    ``INPUT.FORMAT`` (flipped for ``"RGB"``), its shorter side resized to ``INPUT.MIN_SIZE_TEST``
    (the longer at most ``INPUT.MAX_SIZE_TEST``), and run in eval mode without gradients.

    Converted (the obvious cases): a grayscale (H, W) or (H, W, 1) image is repeated to three
    channels; a BGRA (H, W, 4) image (``cv2.IMREAD_UNCHANGED`` of a PNG with alpha) loses its alpha.

    Refused with an error that says how to convert: anything that is not a numpy array (``None``
    from a failed ``cv2.imread``, a tensor, a PIL image) and a dtype other than ``uint8``
    (TypeError); an empty image, another number of dimensions or channels, e.g. a batch or a
    channels-first (C, H, W) array (ValueError).

    Returns ``{"instances": Instances}`` in the original image's pixels: ``pred_boxes`` (absolute
    XYXY), ``scores`` and ``pred_classes``, without a score threshold.
    """

    def __call__(self, original_image: np.ndarray) -> Dict[str, Any]:
        return super().__call__(self.check_image(original_image))

    @staticmethod
    def check_image(image: Any) -> np.ndarray:
        """``image`` as an (H, W, 3) uint8 BGR array (grayscale and BGRA converted), or an error."""
        if not isinstance(image, np.ndarray):
            hint = " (cv2.imread returns None for a file it cannot read)" if image is None else ""
            raise TypeError(f"StudentPredictor takes {_INPUT_CONTRACT}; got {type(image).__module__}."
                            f"{type(image).__qualname__}{hint}.")
        if image.size == 0:
            raise ValueError(f"StudentPredictor got an empty image of shape {image.shape}; it takes {_INPUT_CONTRACT}.")
        channels = {2: 1, 3: image.shape[-1]}.get(image.ndim, 0)
        if image.ndim not in (2, 3) or channels not in (1, 3, 4):
            hint = ""
            if image.ndim == 4:
                hint = " Pass one image at a time, not a batch."
            elif image.ndim == 3 and image.shape[0] in (1, 3, 4):
                hint = " It looks channels-first: pass image.transpose(1, 2, 0)."
            raise ValueError(f"StudentPredictor takes {_INPUT_CONTRACT} (or H x W grayscale, H x W x 4 BGRA); "
                             f"got shape {image.shape}.{hint}")
        if image.dtype != np.uint8:
            raise TypeError(f"StudentPredictor takes {_INPUT_CONTRACT}; got dtype {image.dtype}. Convert with "
                            "np.clip(image, 0, 255).astype(np.uint8) (scale an image in [0, 1] by 255 first).")
        if channels == 1:
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        elif channels == 4:
            image = np.ascontiguousarray(image[:, :, :3])
        return image
