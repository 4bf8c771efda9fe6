#!/usr/bin/env python
"""Convert a detrex checkpoint (DINO, DAB-DETR, Deformable DETR, DAB-Deformable DETR,
Conditional DETR) to this project's parameter names, e.g. to use it as a teacher.

    .venv/bin/python tools/convert_detrex.py --config-file configs/dino_r50.py \\
        --input dino_r50_4scale_12ep.pth --output checkpoints/dino_r50.pth

``--config-file`` is the single-model config of the same architecture (its ``model`` gives our
names and shapes; overrides such as ``model.num_queries=...`` go after the options). Every
detrex key that nothing took and every parameter of ours that was not found is printed; the
command fails on the latter unless ``--allow-missing``.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import torch  # noqa: E402
from detectron2.config import instantiate  # noqa: E402

from kddetr.checkpoint import read_state_dict  # noqa: E402
from kddetr.config import config_argument_parser, load_config  # noqa: E402
from kddetr.convert_detrex import convert_detrex_state_dict  # noqa: E402


def main(argv=None) -> int:
    parser = config_argument_parser(__doc__, "single-model config of the architecture")
    parser.add_argument("--input", required=True, help="detrex checkpoint (.pth)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--allow-missing", action="store_true", help="write the file even if parameters are missing")
    args = parser.parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    if "student" in cfg.model:
        raise SystemExit(f"{args.config_file} is a teacher/student pair: give the single-model config of the "
                         "architecture (e.g. configs/dino_r50.py)")
    if not os.path.isfile(args.input):
        raise SystemExit(f"no checkpoint at {args.input}")
    model = instantiate(cfg.model)
    state, unmatched, problems = convert_detrex_state_dict(read_state_dict(args.input), model)
    print(f"converted {len(state)} of {len(model.state_dict())} tensors of {type(model).__name__}")
    for key in unmatched:
        print(f"  unmatched detrex key: {key}")
    for p in problems:
        print(f"  missing: {p}")
    if problems and not args.allow_missing:
        print(f"{len(problems)} parameters not converted; nothing written (--allow-missing writes anyway)")
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    torch.save({"model": state, "converted_from": os.path.abspath(args.input)}, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("convert_detrex.py"):  # the project's refusals: one message, no traceback
        sys.exit(main())
