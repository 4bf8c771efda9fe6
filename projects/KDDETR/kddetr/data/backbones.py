"""Pretrained backbones for the synthetic data: the analogue of ImageNet weights.

Real DETRs start from an ImageNet-pretrained ResNet; the synthetic configs cannot download one,
so this module trains Detectron2 ResNets as *classifiers* on crops of the synthetic training
images (each object's box, plus background crops that overlap no object: K + 1 classes) and
writes their weights as a detector checkpoint (``backbone.*`` keys) that
``train.init_checkpoint`` loads, exactly as the COCO configs load ``R-50.pkl``.

The configs name them ``synthetic-backbone://R-<depth>`` (Detectron2's ResNet) or ``R-<depth>-vd``
(RT-DETR's ResNet-vd, :class:`~kddetr.modeling.resnet_vd.ResNetVd`). :class:`SyntheticBackboneHandler`
(registered with Detectron2's ``PathManager`` when :mod:`kddetr.data` is imported) resolves that
to ``<synthetic root>/backbones/R-<depth>.pth`` (or ``$KDDETR_SYNTHETIC_BACKBONES/R-<depth>.pth``)
and trains it there on first use (one process
at a time, atomically), logging what it does; later runs reuse the file. Deterministic: the
crops, the data order and the initialisation come from fixed seeds.

Only the training split is used (``synthetic_val`` stays unseen), as ImageNet is disjoint from
COCO val.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np
import torch
from detectron2.utils.file_io import PathHandler, PathManager
from torch import nn

from .synthetic import CLASSES, default_root, ensure_generated

logger = logging.getLogger(__name__)

SCHEME = "synthetic-backbone://"
#: RGB statistics of every detector config (ImageNet's, in 0-255), so the features match their input
PIXEL_MEAN, PIXEL_STD = (123.675, 116.280, 103.530), (58.395, 57.120, 57.375)


@dataclass(frozen=True)
class PretrainSettings:
    """How a backbone is pretrained (part of the cache file's name when not the defaults)."""

    crop: int = 32  # crops are resized to crop x crop pixels
    context: float = 1.25  # a crop is the object's box scaled by this (some context around it)
    background_per_image: int = 2  # background crops per training image (IoU < 0.1 with every object)
    steps: int = 300
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    max_images: int = 0  # use only the first training images (0: all; tests use a few)


#: the ResNet norm of the synthetic detector configs (``configs/models/common.py``'s SYNTHETIC): the
#: pretrained weights must have the same parameters and buffers (trainable BatchNorm)
SYNTHETIC_NORM = "BN"


#: the ResNet variants a synthetic backbone can be: Detectron2's ("") and ResNet-vd ("vd", RT-DETR's)
VARIANTS = ("", "vd")


def backbone_name(depth: int, variant: str = "") -> str:
    """``R-<depth>`` or ``R-<depth>-vd``: the name after ``synthetic-backbone://`` and of the cache file."""
    if variant not in VARIANTS:
        raise ValueError(f"a synthetic backbone's variant is one of {VARIANTS}, got '{variant}'")
    return f"R-{depth}" + (f"-{variant}" if variant else "")


def build_resnet(depth: int, norm: str = "BN", variant: str = "") -> nn.Module:
    """A ResNet as the detector configs build it (every stage trainable, res5 out): Detectron2's, or with
    ``variant="vd"`` RT-DETR's ResNet-vd."""
    from detectron2.modeling.backbone import BasicStem, ResNet

    from ..modeling.resnet_vd import ResNetVd

    if variant == "vd":
        return ResNetVd(depth, out_features=["res5"], norm=norm, freeze_at=0)
    kwargs = dict(stride_in_1x1=False) if depth >= 50 else {}
    stages = ResNet.make_default_stages(depth=depth, norm=norm, **kwargs)
    return ResNet(BasicStem(in_channels=3, out_channels=64, norm=norm), stages, out_features=["res5"], freeze_at=0)


class Classifier(nn.Module):
    """ResNet -> global average pool of res5 -> linear over K + 1 classes (the last: background)."""

    def __init__(self, depth: int, num_classes: int, norm: str = "BN", variant: str = ""):
        super().__init__()
        self.backbone = build_resnet(depth, norm, variant)
        channels = self.backbone.output_shape()["res5"].channels
        self.head = nn.Linear(channels, num_classes + 1)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[N, 3, S, S]`` RGB 0-255 -> logits ``[N, K + 1]``."""
        x = self.backbone((images - self.pixel_mean) / self.pixel_std)["res5"]
        return self.head(x.mean((2, 3)))


def _iou_xywh(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter)


def _crop(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """A square of ``side`` pixels centred at (cx, cy), zero-padded at the borders, resized to ``size``."""
    side = max(side, 4.0)
    scale = size / side
    m = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], dtype=np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def crops(root: str, settings: PretrainSettings, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """Every object crop of ``split`` (pretraining: ``train`` only) and ``background_per_image``
    background crops per image: ``images [N, S, S, 3]`` uint8 RGB and ``labels [N]`` (0..K-1
    classes, K background)."""
    with open(os.path.join(root, "annotations", f"instances_{split}.json")) as f:
        coco = json.load(f)
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    rng = np.random.default_rng(settings.seed)
    images, labels = [], []
    for im in coco["images"][:settings.max_images or None]:
        rgb = cv2.imread(os.path.join(root, split, im["file_name"]))[:, :, ::-1]
        anns = by_image.get(im["id"], [])
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        for a, (x, y, w, h) in zip(anns, boxes):
            images.append(_crop(rgb, x + w / 2, y + h / 2, max(w, h) * settings.context, settings.crop))
            labels.append(a["category_id"] - 1)
        H, W = im["height"], im["width"]
        found, tries = 0, 0
        while found < settings.background_per_image and tries < 50:
            tries += 1
            side = float(np.exp(rng.uniform(np.log(8), np.log(min(H, W) / 2))))
            x, y = rng.uniform(0, W - side), rng.uniform(0, H - side)
            if (_iou_xywh(np.array([x, y, side, side]), boxes) < 0.1).all():
                images.append(_crop(rgb, x + side / 2, y + side / 2, side, settings.crop))
                labels.append(len(CLASSES))
                found += 1
    return np.stack(images), np.array(labels, dtype=np.int64)


def pretrain(depth: int, path: str, settings: PretrainSettings = PretrainSettings(), root: str = "",
             norm: str = "BN", variant: str = "") -> str:
    """Train a ResNet-``depth`` (``variant="vd"``: ResNet-vd) classifier on synthetic crops; write its backbone
    to ``path`` as a detector checkpoint (``{"model": {"backbone.<name>": tensor}}``). Returns ``path``."""
    name = backbone_name(depth, variant)
    root = ensure_generated(root or None)
    torch.manual_seed(settings.seed)
    images, labels = crops(root, settings)
    logger.info(f"Pretraining a {name} backbone on {len(labels)} synthetic crops "
                f"({int((labels == len(CLASSES)).sum())} background), {settings.steps} steps of {settings.batch} "
                f"(one time; the result is cached at {path}) ...")
    model = Classifier(depth, len(CLASSES), norm, variant).train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.steps, pct_start=0.1)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y_all = torch.from_numpy(labels)
    g = torch.Generator().manual_seed(settings.seed)
    t0, correct, seen = time.perf_counter(), 0, 0
    for step in range(settings.steps):
        idx = torch.randint(len(y_all), (settings.batch,), generator=g)
        x = x_all[idx].float()
        flip = torch.rand(settings.batch, generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        correct += int((logits.argmax(1) == y_all[idx]).sum())
        seen += settings.batch
        if (step + 1) % 50 == 0 or step + 1 == settings.steps:
            eta = (time.perf_counter() - t0) / (step + 1) * (settings.steps - step - 1)
            logger.info(f"  {name} step {step + 1}/{settings.steps}: loss {loss.item():.3f}, accuracy over "
                        f"the last steps {correct / seen:.2f}, eta {eta / 60:.1f} min")
            correct, seen = 0, 0
    state = {f"backbone.{k}": v.detach().clone() for k, v in model.backbone.state_dict().items()}
    meta = {"depth": depth, "variant": variant, "norm": norm, "settings": settings.__dict__, "crops": int(len(labels)),
            "final_loss": float(loss.item())}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    os.close(fd)
    torch.save({"model": state, "__author__": "kddetr.data.backbones", "meta": meta}, tmp)
    os.replace(tmp, path)
    logger.info(f"{name} backbone written to {path} ({time.perf_counter() - t0:.0f} s)")
    return path


#: a folder to keep (or share) the pretrained backbones in, instead of ``<synthetic root>/backbones``
CACHE_ENV = "KDDETR_SYNTHETIC_BACKBONES"


def cached_path(depth: int, root: str = "", variant: str = "") -> str:
    """Where ``synthetic-backbone://R-<depth>[-vd]`` lives: ``$KDDETR_SYNTHETIC_BACKBONES/R-<depth>[-vd].pth``
    if that variable is set (the tests point it at short pretrainings), else
    ``<synthetic root>/backbones/R-<depth>[-vd].pth`` next to the dataset it was trained on."""
    folder = os.environ.get(CACHE_ENV) if not root else ""
    return os.path.join(folder or os.path.join(root or default_root(), "backbones"),
                        f"{backbone_name(depth, variant)}.pth")


def ensure_pretrained(depth: int, root: str = "", variant: str = "") -> str:
    """The cached backbone of ``depth`` (and ``variant``), pretrained first if missing (one process at a time)."""
    path = cached_path(depth, root, variant)
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(path):
            pretrain(depth, path, root=root, norm=SYNTHETIC_NORM, variant=variant)
    return path


class SyntheticBackboneHandler(PathHandler):
    """``synthetic-backbone://R-<depth>[-vd]`` -> the cached pretrained backbone (trained on first use)."""

    PATTERN = re.compile(r"^R-(18|34|50|101)(?:-(vd))?$")

    def _get_supported_prefixes(self):
        return [SCHEME]

    def _get_local_path(self, path: str, **kwargs) -> str:
        name = path[len(SCHEME):]
        m = self.PATTERN.match(name)
        if not m:
            raise ValueError(f"'{path}': synthetic backbones are {SCHEME}R-18, R-34, R-50 or R-101, or the same "
                             "with -vd (ResNet-vd)")
        return ensure_pretrained(int(m.group(1)), variant=m.group(2) or "")

    def _open(self, path: str, mode: str = "r", **kwargs):
        return PathManager.open(self._get_local_path(path), mode, **kwargs)

    def _isfile(self, path: str, **kwargs) -> bool:
        return bool(self.PATTERN.match(path[len(SCHEME):]))


def register_handler() -> None:
    """Register :class:`SyntheticBackboneHandler` once with Detectron2's ``PathManager``."""
    if SCHEME not in PathManager._path_handlers:  # noqa: SLF001 (iopath has no public lookup)
        PathManager.register_handler(SyntheticBackboneHandler())
