"""A deterministic synthetic COCO-format detection dataset that runs anywhere.

Six shape classes, sizes from tiny (6 px) to large (about half the image), colours around
a per-class hue, overlaps with bounded occlusion, textured backgrounds and a few images
with no objects. Generated on first use under ``$DETECTRON2_DATASETS/kddetr_synthetic_v1``
(Detectron2's default ``datasets/`` when unset) and registered as ``synthetic_train`` /
``synthetic_val``. ``tools/make_synthetic_coco.py`` writes it explicitly, or writes harder
custom copies with two knobs: the share of objects painted in their class colour and
unlabeled clutter blobs.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

logger = logging.getLogger(__name__)

CLASSES = ["circle", "square", "triangle", "star", "ring", "cross"]
COLORS = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 225, 25), (145, 30, 180), (245, 130, 48)]
VERSION = "v1"
# split -> (number of images, seed)
SPLITS = {"train": (2000, 0), "val": (200, 1)}
IMAGE_SIZE = 128
MIN_SIZE, MAX_SIZE = 6, 64
MAX_OBJECTS = 8
EMPTY_FRACTION = 0.03
MIN_VISIBLE = 0.6  # an earlier object keeps at least this share of its pixels
# Defaults of the registered dataset. Lower CLASS_COLOR_PROB / raise MAX_DISTRACTORS for a
# harder copy (measured: 0.5 / 3 dropped a from-scratch DINO R50 from AP 34.6 to 13.4 at
# 500 iterations, too hard for the CPU schedules).
CLASS_COLOR_PROB = 1.0  # otherwise a random colour: then only the shape decides the class
MAX_DISTRACTORS = 0  # unlabeled irregular blobs per image


def default_root() -> str:
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), f"kddetr_synthetic_{VERSION}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour noise, sometimes stripes or a checkerboard, plus pixel noise."""
    base = rng.uniform(40, 215, size=3)
    coarse = rng.normal(0, 25, size=(rng.integers(2, 6), rng.integers(2, 6), 3))
    img = base + cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == 1:  # stripes
        period, angle = rng.uniform(6, 20), rng.uniform(0, np.pi)
        img += (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) * rng.uniform(8, 25))[..., None]
    elif kind == 2:  # checkerboard
        cell = rng.integers(6, 20)
        img += ((((xx // cell) + (yy // cell)) % 2) * 2 - 1)[..., None] * rng.uniform(6, 20)
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, cls: int, size: int, cx: float, cy: float, s: float) -> np.ndarray:
    """Binary mask of one shape of class ``cls`` with extent about ``s`` pixels at (cx, cy)."""
    mask = np.zeros((size, size), np.uint8)
    r = s / 2
    angle = rng.uniform(0, 2 * np.pi)
    name = CLASSES[cls]
    if name == "circle":
        cv2.circle(mask, (int(round(cx)), int(round(cy))), max(2, int(round(r))), 1, -1)
    elif name == "ring":
        cv2.circle(mask, (int(round(cx)), int(round(cy))), max(3, int(round(r))), 1, -1)
        cv2.circle(mask, (int(round(cx)), int(round(cy))), max(1, int(round(r * 0.55))), 0, -1)
    else:
        if name == "square":
            pts = [(np.cos(angle + k * np.pi / 2) * r * 1.2, np.sin(angle + k * np.pi / 2) * r * 1.2) for k in range(4)]
        elif name == "triangle":
            corners = [angle + k * 2 * np.pi / 3 for k in range(3)]
            pts = [(np.cos(a) * r * 1.15, np.sin(a) * r * 1.15) for a in corners]
        elif name == "star":
            pts = [(np.cos(angle + k * np.pi / 5) * r * (1.1 if k % 2 == 0 else 0.45),
                    np.sin(angle + k * np.pi / 5) * r * (1.1 if k % 2 == 0 else 0.45)) for k in range(10)]
        else:  # cross: a plus sign of two bars
            t = r * 0.33
            arm = [(-r, -t), (-t, -t), (-t, -r), (t, -r), (t, -t), (r, -t),
                   (r, t), (t, t), (t, r), (-t, r), (-t, t), (-r, t)]
            c, s_ = np.cos(angle / 4), np.sin(angle / 4)
            pts = [(x * c - y * s_, x * s_ + y * c) for x, y in arm]
        poly = np.array([[cx + x, cy + y] for x, y in pts], dtype=np.float32)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return mask.astype(bool)


def _distractor_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """An irregular polygon that belongs to no class."""
    r = float(np.exp(rng.uniform(np.log(4), np.log(20))))
    cx, cy = rng.uniform(0, size, size=2)
    k = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = r * rng.uniform(0.4, 1.0, k)
    poly = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return mask.astype(bool)


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    shade = rng.uniform(0.75, 1.1)
    img[mask] = np.clip(color * shade + rng.normal(0, 8, (int(mask.sum()), 3)), 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator, size: int = IMAGE_SIZE, class_color_prob: float = CLASS_COLOR_PROB,
                 max_distractors: int = MAX_DISTRACTORS) -> Tuple[np.ndarray, List[Dict]]:
    """One RGB image ``[size, size, 3]`` uint8 and its objects ``{"category": int, "bbox": [x, y, w, h]}``.

    With the defaults no extra random numbers are drawn, so the registered dataset stays
    identical whatever the knobs' code paths.
    """
    img = _background(rng, size)
    if max_distractors > 0:
        for _ in range(int(rng.integers(0, max_distractors + 1))):
            _paint(rng, img, _distractor_mask(rng, size), rng.uniform(30, 230, 3))
    n = 0 if rng.random() < EMPTY_FRACTION else int(rng.integers(1, MAX_OBJECTS + 1))
    owner = np.full((size, size), -1, np.int32)  # which object each pixel shows
    objects: List[Dict] = []
    for _ in range(n * 4):  # a few tries per object to respect the occlusion bound
        if len(objects) == n:
            break
        cls = int(rng.integers(len(CLASSES)))
        s = float(np.exp(rng.uniform(np.log(MIN_SIZE), np.log(MAX_SIZE))))
        cx, cy = rng.uniform(s * 0.3, size - s * 0.3, size=2)
        mask = _shape_mask(rng, cls, size, cx, cy, s)
        if mask.sum() < 12:
            continue
        if any((((owner == i) & ~mask).sum() < MIN_VISIBLE * o["area_full"]) for i, o in enumerate(objects)):
            continue
        if class_color_prob >= 1.0 or rng.random() < class_color_prob:
            color = np.clip(np.array(COLORS[cls]) + rng.normal(0, 35, 3), 0, 255)
        else:
            color = rng.uniform(30, 230, 3)
        _paint(rng, img, mask, color)
        owner[mask] = len(objects)
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        objects.append({"category": cls, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        "area_full": int(mask.sum())})
    for i, o in enumerate(objects):
        o["area"] = float((owner == i).sum())
        del o["area_full"]
    return img, objects


def write_split(root: str, split: str, num_images: int, seed: int, size: int = IMAGE_SIZE,
                class_color_prob: float = CLASS_COLOR_PROB, max_distractors: int = MAX_DISTRACTORS) -> str:
    """Write ``root/{split}/*.png`` and ``root/annotations/instances_{split}.json``; returns the json path."""
    rng = np.random.default_rng(seed)
    image_dir = os.path.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img, objects = render_image(rng, size, class_color_prob, max_distractors)
        file_name = f"{image_id:06d}.png"
        cv2.imwrite(os.path.join(image_dir, file_name), img[:, :, ::-1])
        images.append({"id": image_id, "file_name": file_name, "height": size, "width": size})
        for o in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": o["category"] + 1,
                                "bbox": o["bbox"], "area": o["area"], "iscrowd": 0})
    coco = {
        "info": {"description": f"KD-DETR synthetic shapes {VERSION}, split {split}, seed {seed}"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CLASSES)],
    }
    json_path = os.path.join(root, "annotations", f"instances_{split}.json")
    with open(json_path, "w") as f:
        json.dump(coco, f)
    return json_path


def ensure_generated(root: Optional[str] = None) -> str:
    """Generate every split once (atomically, safe across processes); returns the root."""
    root = root or default_root()
    done = os.path.join(root, "DONE")
    if os.path.exists(done):
        return root
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, f".{os.path.basename(root)}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            logger.info(f"Generating the synthetic dataset into {root} (one time) ...")
            tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp_synthetic_")
            for split, (num, seed) in SPLITS.items():
                write_split(tmp, split, num, seed)
            open(os.path.join(tmp, "DONE"), "w").close()
            if os.path.exists(root):
                shutil.rmtree(root)
            os.rename(tmp, root)
            logger.info(f"Synthetic dataset ready in {root}")
    return root


def mini_split(root: str, split: str = "val", num_images: int = 16) -> str:
    """Json of the first ``num_images`` images of ``split`` (fast evaluation in tests)."""
    path = os.path.join(root, "annotations", f"instances_{split}_mini.json")
    if not os.path.exists(path):
        with open(os.path.join(root, "annotations", f"instances_{split}.json")) as f:
            coco = json.load(f)
        coco["images"] = coco["images"][:num_images]
        keep = {im["id"] for im in coco["images"]}
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(coco, f)
        os.replace(tmp, path)
    return path


#: the one class of the one-class variant (``synthetic_<split>_one_class``): every shape is a "shape"
ONE_CLASS = "shape"


def one_class_split(root: str, split: str) -> str:
    """Json of ``split`` with every object of the one class :data:`ONE_CLASS` (the same images and boxes):
    one-class detection, as people, trees, defects or cells are."""
    path = os.path.join(root, "annotations", f"instances_{split}_one_class.json")
    if not os.path.exists(path):
        with open(os.path.join(root, "annotations", f"instances_{split}.json")) as f:
            coco = json.load(f)
        coco["categories"] = [{"id": 1, "name": ONE_CLASS}]
        for a in coco["annotations"]:
            a["category_id"] = 1
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(coco, f)
        os.replace(tmp, path)
    return path


def register_synthetic_datasets() -> None:
    """Register ``synthetic_train``, ``synthetic_val``, the 16-image ``synthetic_val_mini`` and the
    one-class ``synthetic_train_one_class`` / ``synthetic_val_one_class`` (generated lazily on first load)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import load_coco_json

    root = default_root()
    for split in SPLITS:
        name = f"synthetic_{split}_one_class"
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda split=split, name=name: load_coco_json(
            one_class_split(ensure_generated(), split), os.path.join(default_root(), split), name))
        MetadataCatalog.get(name).set(
            thing_classes=[ONE_CLASS], thing_colors=[COLORS[0]], evaluator_type="coco", generated_on_first_use=True,
            json_file=os.path.join(root, "annotations", f"instances_{split}_one_class.json"),
            image_root=os.path.join(root, split))
    if "synthetic_val_mini" not in DatasetCatalog.list():
        DatasetCatalog.register("synthetic_val_mini", lambda: load_coco_json(
            mini_split(ensure_generated()), os.path.join(root, "val"), "synthetic_val_mini"))
        MetadataCatalog.get("synthetic_val_mini").set(
            thing_classes=list(CLASSES), thing_colors=list(COLORS), evaluator_type="coco", generated_on_first_use=True,
            json_file=os.path.join(root, "annotations", "instances_val_mini.json"),
            image_root=os.path.join(root, "val"))
    for split in SPLITS:
        name = f"synthetic_{split}"
        if name in DatasetCatalog.list():
            continue

        def load(split=split, name=name):
            root = ensure_generated()
            return load_coco_json(os.path.join(root, "annotations", f"instances_{split}.json"),
                                  os.path.join(root, split), name)

        DatasetCatalog.register(name, load)
        MetadataCatalog.get(name).set(
            thing_classes=list(CLASSES),
            thing_colors=list(COLORS),
            json_file=os.path.join(root, "annotations", f"instances_{split}.json"),
            image_root=os.path.join(root, split),
            evaluator_type="coco",
            generated_on_first_use=True,  # train_net.py's start-up check does not ask for the files
        )
