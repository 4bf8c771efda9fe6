#!/usr/bin/env python
"""Draw a served model's detections with detectron2's Visualizer, through DefaultPredictor.

    .venv/bin/python tools/visualize.py --config output/synthetic/export/predictor.yaml \\
        --input image.png --output detections.png [--score-threshold 0.3]
    .venv/bin/python tools/visualize.py --config teacher.yaml --config student.yaml --label teacher \\
        --label student --images 4 --output side_by_side.png

Without --input, the first ``--images`` images of the (first) predictor config's test dataset are
used. Several ``--config`` give one row per model over the same images (a side-by-side picture).
"""
import argparse
import os
import sys
from typing import List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.utils.visualizer import Visualizer  # noqa: E402

import kddetr  # noqa: E402,F401  (registers datasets and meta-architectures)
from kddetr.config import add_kddetr_config  # noqa: E402
from kddetr.export import StudentPredictor  # noqa: E402


def load_predictor_config(path: str):
    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.merge_from_file(path)
    return cfg


def draw(cfg, images: List[np.ndarray], metadata, score_threshold: float, scale: float) -> List[np.ndarray]:
    """``images`` BGR -> the same images with the model's detections (score >= threshold) drawn, BGR."""
    predictor = StudentPredictor(cfg)
    out = []
    for image in images:
        instances = predictor(image)["instances"].to("cpu")
        instances = instances[instances.scores >= score_threshold]
        vis = Visualizer(image[:, :, ::-1], metadata, scale=scale).draw_instance_predictions(instances)
        out.append(vis.get_image()[:, :, ::-1])
    return out


def grid(rows: List[List[np.ndarray]], labels: List[str]) -> np.ndarray:
    """One row per model (its label written in a band above it), the images side by side."""
    lines = []
    for label, row in zip(labels, rows):
        strip = np.concatenate([np.pad(im, ((4, 4), (4, 4), (0, 0)), constant_values=255) for im in row], axis=1)
        band = np.full((36, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(band, label, (8, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
        lines += [band, strip]
    return np.concatenate(lines, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, action="append",
                        help="predictor.yaml written by tools/export_student.py (repeat: one row per model)")
    parser.add_argument("--label", action="append", default=[], help="a row's title (one per --config)")
    parser.add_argument("--input", default="", help="an image file (default: the first test images)")
    parser.add_argument("--images", type=int, default=1, help="how many test images without --input")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--scale", type=float, default=3.0, help="drawing scale (small images read better larger)")
    args = parser.parse_args()
    if args.label and len(args.label) != len(args.config):
        raise SystemExit(f"--label: {len(args.label)} given for {len(args.config)} --config; give one per --config")
    labels = args.label or [os.path.basename(os.path.dirname(os.path.abspath(c))) for c in args.config]

    cfgs = [load_predictor_config(c) for c in args.config]
    dataset = cfgs[0].DATASETS.TEST[0] if len(cfgs[0].DATASETS.TEST) else ""
    if args.input:
        paths = [args.input]
    elif dataset:
        paths = [d["file_name"] for d in DatasetCatalog.get(dataset)[:args.images]]
    else:
        raise SystemExit(f"{args.config[0]} names no test dataset: give --input <image>")
    images = []
    for path in paths:
        image = cv2.imread(path)
        if image is None:
            raise SystemExit(f"cannot read image '{path}'")
        images.append(image)
    metadata = MetadataCatalog.get(dataset) if dataset else None
    rows = [draw(cfg, images, metadata, args.score_threshold, args.scale) for cfg in cfgs]
    picture = rows[0][0] if len(rows) == 1 and len(images) == 1 else grid(rows, labels)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    cv2.imwrite(args.output, picture)
    print(f"{len(cfgs)} model(s) x {len(images)} image(s) (score >= {args.score_threshold}) -> {args.output}")


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("visualize.py"):  # the project's refusals: one message, no traceback
        main()
