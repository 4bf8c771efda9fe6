#!/usr/bin/env python
"""Pretrain the synthetic data's backbones (the analogue of ImageNet weights) ahead of time.

    .venv/bin/python tools/pretrain_backbone.py --depth 18 50          # into the cache the configs read
    .venv/bin/python tools/pretrain_backbone.py --depth 18 50 --variant vd   # RT-DETR's ResNet-vd
    .venv/bin/python tools/pretrain_backbone.py --depth 18 --steps 300 --output /tmp/R-18.pth

Trains a Detectron2 ResNet classifier on crops of the synthetic training images (the shape
classes plus background) and writes its ``backbone.*`` weights as a detector checkpoint. Without
``--output`` the file goes to the cache behind ``synthetic-backbone://R-<depth>``
(``<synthetic root>/backbones/``), which a config's ``train.init_checkpoint`` would otherwise fill on
first use (projects/KDDETR/kddetr/data/backbones.py).
"""
import argparse
import dataclasses
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

from kddetr.data.backbones import SYNTHETIC_NORM, VARIANTS, PretrainSettings, cached_path, pretrain  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, nargs="+", default=[18, 50], choices=[18, 34, 50, 101])
    parser.add_argument("--variant", default="", choices=list(VARIANTS),
                        help="'vd': RT-DETR's ResNet-vd (synthetic-backbone://R-<depth>-vd)")
    defaults = PretrainSettings()
    for f in dataclasses.fields(PretrainSettings):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name))
    parser.add_argument("--output", default="", help="file to write (one --depth only); default: the cache")
    parser.add_argument("--force", action="store_true", help="retrain even if the cached file exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    os.chdir(ROOT)
    if args.output and len(args.depth) != 1:
        raise SystemExit("--output names one file: give one --depth")
    settings = PretrainSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainSettings)})
    for depth in args.depth:
        path = args.output or cached_path(depth, variant=args.variant)
        if os.path.isfile(path) and not args.force and not args.output:
            print(f"{path} exists (use --force to retrain)")
            continue
        pretrain(depth, path, settings, norm=SYNTHETIC_NORM, variant=args.variant)


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("pretrain_backbone.py"):  # the project's refusals: one message, no traceback
        main()
