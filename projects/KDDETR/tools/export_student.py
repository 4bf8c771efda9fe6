#!/usr/bin/env python
"""Turn a distillation checkpoint into a student-only checkpoint plus a DefaultPredictor config.

    .venv/bin/python tools/export_student.py --config-file configs/synthetic/dino_r50_r18.py \\
        --checkpoint output/synthetic/dino_r50_r18/model_final.pth --output-dir output/synthetic/export

Writes student.pth, student_model.yaml and predictor.yaml (see kddetr/engine/predictor.py for
the three lines that serve it with detectron2's DefaultPredictor).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.config import LazyConfig  # noqa: E402

from kddetr.engine import export_student  # noqa: E402
from kddetr.engine.setup import check_override_keys  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the distillation config the checkpoint was trained with")
    parser.add_argument("--checkpoint", required=True, help="model_final.pth of a distillation run")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE of the predictor config")
    parser.add_argument("opts", nargs="*", help="key=value overrides used at training time (e.g. model sizes)")
    args = parser.parse_args()
    cfg = LazyConfig.load(args.config_file)
    check_override_keys(cfg, args.opts, args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    if "student" not in cfg.model:
        raise SystemExit(f"{args.config_file} is not a distillation config (no model.student); a single-model "
                         "checkpoint can be served as it is.")
    path = export_student(cfg, args.checkpoint, args.output_dir, args.device)
    print(f"wrote {os.path.dirname(path)}/{{student.pth, student_model.yaml, predictor.yaml}}")


if __name__ == "__main__":
    main()
