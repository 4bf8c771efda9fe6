#!/usr/bin/env python
"""Turn a distillation checkpoint into a student-only checkpoint plus a DefaultPredictor config.

    .venv/bin/python tools/export_student.py --config-file configs/synthetic/dino_r50_r18.py \\
        --checkpoint output/synthetic/dino_r50_r18/model_final.pth --output-dir output/synthetic/export

Writes student.pth, student_model.yaml and predictor.yaml (see projects/KDDETR/kddetr/export.py for
the three lines that serve it with detectron2's DefaultPredictor).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

from kddetr.checkpoint import CheckpointError  # noqa: E402
from kddetr.config import apply_user_dataset, config_argument_parser, load_config  # noqa: E402
from kddetr.export import export_student  # noqa: E402


def main() -> None:
    parser = config_argument_parser(__doc__, "the distillation config the checkpoint was trained with",
                                    "key=value overrides used at training time (e.g. model sizes)")
    parser.add_argument("--checkpoint", required=True, help="model_final.pth of a distillation run")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE of the predictor config")
    args = parser.parse_args()
    cfg = load_config(args.config_file, args.opts)
    apply_user_dataset(cfg)  # user_dataset.* overrides set the classes, as they did for training
    if "student" not in cfg.model:
        raise SystemExit(f"{args.config_file} is not a distillation config (no model.student); a single-model "
                         "checkpoint can be served as it is.")
    try:
        path = export_student(cfg, args.checkpoint, args.output_dir, args.device)
    except (CheckpointError, FileNotFoundError) as e:
        raise SystemExit(f"export_student.py: {e}") from None
    print(f"wrote {os.path.dirname(path)}/{{student.pth, student_model.yaml, predictor.yaml}}")


if __name__ == "__main__":
    main()
