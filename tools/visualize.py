#!/usr/bin/env python
"""Draw a served student's detections on an image with detectron2's Visualizer.

    .venv/bin/python tools/visualize.py --config output/synthetic/export/predictor.yaml \\
        --input image.png --output detections.png [--score-threshold 0.3]

Without --input, the first image of the predictor config's test dataset is used.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import cv2  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.utils.visualizer import Visualizer  # noqa: E402

import kddetr  # noqa: E402,F401  (registers datasets and meta-architectures)
from kddetr.config import add_kddetr_config  # noqa: E402
from kddetr.export import StudentPredictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="predictor.yaml written by tools/export_student.py")
    parser.add_argument("--input", default="", help="an image file (default: first test image)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--scale", type=float, default=3.0, help="drawing scale (small images read better larger)")
    args = parser.parse_args()

    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.merge_from_file(args.config)
    dataset = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else ""
    path = args.input or DatasetCatalog.get(dataset)[0]["file_name"]
    image = cv2.imread(path)
    if image is None:
        raise SystemExit(f"cannot read image '{path}'")
    instances = StudentPredictor(cfg)(image)["instances"].to("cpu")
    instances = instances[instances.scores >= args.score_threshold]
    metadata = MetadataCatalog.get(dataset) if dataset else None
    vis = Visualizer(image[:, :, ::-1], metadata, scale=args.scale).draw_instance_predictions(instances)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    cv2.imwrite(args.output, vis.get_image()[:, :, ::-1])
    print(f"{len(instances)} detections (score >= {args.score_threshold}) on {path} -> {args.output}")


if __name__ == "__main__":
    main()
