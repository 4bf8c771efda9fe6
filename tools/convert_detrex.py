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

from kddetr.checkpoint import converter_model, read_state_dict, write_converted  # noqa: E402
from kddetr.config import config_argument_parser  # noqa: E402
from kddetr.convert_detrex import convert_detrex_state_dict  # noqa: E402


def main(argv=None) -> int:
    parser = config_argument_parser(__doc__, "single-model config of the architecture")
    parser.add_argument("--input", required=True, help="detrex checkpoint (.pth)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--allow-missing", action="store_true", help="write the file even if parameters are missing")
    args = parser.parse_args(argv)
    model = converter_model(args.config_file, args.opts, args.input, "detrex", "configs/dino_r50.py")
    state, unmatched, problems = convert_detrex_state_dict(read_state_dict(args.input), model)
    return write_converted(state, unmatched, problems, len(model.state_dict()), args.output, args.input, "detrex",
                           args.allow_missing, type(model).__name__)


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("convert_detrex.py"):  # the project's refusals: one message, no traceback
        sys.exit(main())
