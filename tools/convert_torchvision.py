#!/usr/bin/env python
"""Convert torchvision's ImageNet ResNet weights into the Detectron2 ResNet backbone the COCO configs
start from (``train.init_checkpoint``: ``checkpoints/R-18.pkl``, ``R-34.pkl``, ``R-101.pkl``; R50 and the
other ``detectron2://ImageNetPretrained/torchvision/R-*.pkl`` are the same conversion, hosted by Detectron2).

    # download torchvision's weights (IMAGENET1K_V1, the ones Detectron2's hosted files hold) and convert
    .venv/bin/python tools/convert_torchvision.py --depth 18            # -> checkpoints/R-18.pkl
    # or convert a file torchvision saved (e.g. ~/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth)
    .venv/bin/python tools/convert_torchvision.py --input resnet18-f37072fd.pth --output checkpoints/R-18.pkl
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

from kddetr.checkpoint import read_state_dict  # noqa: E402
from kddetr.convert_torchvision import torchvision_to_detectron2, write_detectron2_pickle  # noqa: E402
from kddetr.errors import InputError, MissingInputError  # noqa: E402


def torchvision_weights(depth: int) -> dict:
    """torchvision's IMAGENET1K_V1 weights of resnet<depth> (downloaded into torch's hub cache once)."""
    import torchvision

    weights = torchvision.models.get_weight(f"ResNet{depth}_Weights.IMAGENET1K_V1")
    try:
        return weights.get_state_dict(progress=True)
    except OSError as e:  # no network, a proxy, a full disk: say where the file is and how to use it
        raise InputError(f"could not download torchvision's ResNet-{depth} weights from {weights.url} ({e}): "
                         "download that file another way and convert it with --input <file>") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--depth", type=int, choices=[18, 34, 50, 101, 152],
                        help="download torchvision's ImageNet resnet<depth> and convert it")
    source.add_argument("--input", help="a torchvision ResNet state dict (.pth) to convert")
    parser.add_argument("--output", help="the Detectron2 pickle to write (default: checkpoints/R-<depth>.pkl)")
    args = parser.parse_args(argv)
    if args.input and not os.path.isfile(args.input):
        raise MissingInputError(f"--input {args.input} does not exist: give torchvision's resnet<depth> .pth file, or "
                         "--depth <depth> to download it")
    state = read_state_dict(args.input, "--input") if args.input else torchvision_weights(args.depth)
    try:
        weights, depth, dropped = torchvision_to_detectron2(state)
    except ValueError as e:
        raise InputError(f"--input {args.input}: {e}") from None
    output = args.output or os.path.join("checkpoints", f"R-{depth}.pkl")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    write_detectron2_pickle(weights, output)
    print(f"ResNet-{depth}: wrote {len(weights)} tensors to {output} (left out: {len(dropped)} keys, the classifier "
          "and the batch-norm step counters)")
    return 0


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("convert_torchvision.py"):  # the project's refusals: one message, no traceback
        sys.exit(main())
