#!/usr/bin/env python
"""Convert an RT-DETR checkpoint of lyuwenyu/RT-DETR (``rtdetrv2_pytorch``: e.g. the released
``rtdetrv2_r18vd_120e_coco_rerun_48.1.pth``) into this project's names, e.g. to use it as a teacher or to start
a student from it.

    .venv/bin/python tools/convert_rtdetr.py --config-file configs/synthetic/rtdetr_r18.py \\
        --input rtdetrv2_r18vd_120e_coco_rerun_48.1.pth --output checkpoints/rtdetr_r18.pth

``--config-file`` is the single-model RT-DETR config of the same sizes (overrides go after the options). The
checkpoint's EMA weights are taken when it has them (what RT-DETR evaluates with). ``--backbone`` converts
RT-DETR's ImageNet ResNet-vd instead (``PResNet`` names, e.g. ``ResNet18_vd_pretrained_from_paddle.pth``) into
the ``backbone.*`` tensors the configs' ``train.init_checkpoint`` loads:

    .venv/bin/python tools/convert_rtdetr.py --backbone --config-file configs/rtdetr_r18.py \
        --input ResNet18_vd_pretrained_from_paddle.pth --output checkpoints/R-18-vd.pth
 Every key of theirs that
nothing took and every tensor of ours that was not found is printed; the command fails on the latter unless
``--allow-missing``.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import torch  # noqa: E402

from kddetr.checkpoint import converter_model, write_converted  # noqa: E402
from kddetr.config import config_argument_parser  # noqa: E402
from kddetr.convert_rtdetr import convert_rtdetr_state_dict, rtdetr_model_state  # noqa: E402
from kddetr.errors import ConfigError  # noqa: E402
from kddetr.modeling import RTDETR  # noqa: E402


def main(argv=None) -> int:
    parser = config_argument_parser(__doc__, "single-model RT-DETR config of the same sizes")
    parser.add_argument("--input", required=True, help="RT-DETR checkpoint (.pth)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--allow-missing", action="store_true", help="write the file even if tensors are missing")
    parser.add_argument("--backbone", action="store_true", help="--input is RT-DETR's ImageNet ResNet-vd (PResNet)")
    args = parser.parse_args(argv)
    model = converter_model(args.config_file, args.opts, args.input, "RT-DETR", "configs/synthetic/rtdetr_r18.py")
    if not isinstance(model, RTDETR):
        raise ConfigError(f"{args.config_file} builds a {type(model).__name__}, not an RTDETR")
    theirs = rtdetr_model_state(torch.load(args.input, map_location="cpu", weights_only=False))
    if args.backbone:  # PResNet's own names: ours under backbone.*, the rest of the model is not in the file
        theirs = {f"backbone.{k}": v for k, v in theirs.items()}
    state, unmatched, problems = convert_rtdetr_state_dict(theirs, model)
    keep = (lambda k: k.startswith("backbone.")) if args.backbone else (lambda k: True)
    return write_converted({k: v for k, v in state.items() if keep(k)}, unmatched,
                           [p for p in problems if keep(p)], len([k for k in model.state_dict() if keep(k)]),
                           args.output, args.input, "RT-DETR", args.allow_missing,
                           type(model).__name__ + (" (backbone)" if args.backbone else ""))


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("convert_rtdetr.py"):  # the project's refusals: one message, no traceback
        sys.exit(main())
