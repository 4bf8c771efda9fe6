#!/usr/bin/env python
"""Our RT-DETR against RT-DETR's own modules (lyuwenyu/RT-DETR, ``rtdetrv2_pytorch``) on the same random weights:
the check that the family and tools/convert_rtdetr.py reproduce the official model's eval predictions.

RT-DETR is not a dependency and none of its code is in this repository: point ``--rtdetr-src`` at a checkout's
``rtdetrv2_pytorch`` folder (``git clone https://github.com/lyuwenyu/RT-DETR``).

    .venv/bin/python studies/compare_rtdetr.py --rtdetr-src ../RT-DETR/rtdetrv2_pytorch --depth 18 50

For each depth it builds their ``PResNet`` (vd), ``HybridEncoder`` and ``RTDETRTransformerv2`` with RT-DETRv2's
sizes (80 classes), gives every BatchNorm random statistics and the prediction heads random weights (their
initial ones predict every box at its anchor), converts the state dict with ``convert_rtdetr_state_dict``
into ``configs/models/rtdetr.py``'s model, and runs both in eval mode on one random ``[1, 3, 128, 128]`` image
in [0, 1] (RT-DETR's input). It prints the largest differences of the backbone and encoder features and of
the last layer's logits and boxes, query by query and with the queries matched by the memory position they
were selected from (two proposals whose scores are within float rounding may swap ranks).

Their package's ``__init__`` files import their data, solver and registry code; here ``src``, ``src.core``
(with a no-op ``register``) and the subpackages are empty stand-ins, and only the three modules' files are
imported.
"""
import argparse
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout
sys.path.insert(0, ROOT)  # configs.*

MODULES = ("src/nn/backbone/presnet.py", "src/zoo/rtdetr/hybrid_encoder.py", "src/zoo/rtdetr/rtdetrv2_decoder.py")


def import_official(src: str):
    """Their ``PResNet``, ``HybridEncoder`` and ``RTDETRTransformerv2`` classes from the checkout ``src``."""
    sys.path.insert(0, src)
    core = types.ModuleType("src.core")
    core.register = lambda *args, **kwargs: (lambda cls: cls)
    sys.modules["src.core"] = core
    for name in ("src", "src.zoo", "src.zoo.rtdetr", "src.nn", "src.nn.backbone"):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(src, *name.split("."))]
        sys.modules[name] = package
    from src.nn.backbone.presnet import PResNet
    from src.zoo.rtdetr.hybrid_encoder import HybridEncoder
    from src.zoo.rtdetr.rtdetrv2_decoder import RTDETRTransformerv2

    return PResNet, HybridEncoder, RTDETRTransformerv2


def compare(depth: int, classes, seed: int = 0) -> None:
    import torch
    from detectron2.config import instantiate
    from detectron2.structures import ImageList

    from configs.models.rtdetr import rtdetr
    from kddetr.convert_rtdetr import convert_rtdetr_state_dict
    from kddetr.modeling.groups import DETECTION
    from kddetr.modeling.seam import QueryGroup

    PResNet, HybridEncoder, RTDETRTransformerv2 = classes
    small = depth < 50
    torch.manual_seed(seed)
    official = torch.nn.Module()
    official.backbone = PResNet(depth=depth, variant="d", return_idx=[1, 2, 3], freeze_at=-1, freeze_norm=not small,
                                pretrained=False)
    official.encoder = HybridEncoder(in_channels=[128, 256, 512] if small else [512, 1024, 2048],
                                     expansion=0.5 if small else 1.0)
    official.decoder = RTDETRTransformerv2(num_classes=80, num_layers=3 if small else 6, num_points=[4, 4, 4],
                                           feat_channels=[256, 256, 256])
    for m in official.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    for name, p in official.named_parameters():
        if "bbox_head" in name or "score_head" in name:
            p.data.normal_(0, 0.05)
    official.eval()
    ours = instantiate(rtdetr(depth=depth)).eval()
    state, unmatched, problems = convert_rtdetr_state_dict(official.state_dict(), ours)
    print(f"R{depth}: converted {len(state)} of {len(ours.state_dict())} tensors; {len(unmatched)} of theirs "
          f"unmatched, {len(problems)} of ours missing")
    ours.load_state_dict(state)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        feats = official.backbone(x)
        enc = official.encoder(feats)
        ref = official.decoder(enc)
        our_feats = ours.backbone(x)
        our_enc = ours.encoder(our_feats)
        st = ours.encode(ImageList(x, [(128, 128)]), torch.zeros(1, 128, 128, dtype=torch.bool))
        queries = ours.default_queries(st)
        out = ours.decode(st, [QueryGroup(DETECTION, queries)])[0]
        # the memory position each query was selected from, on both sides
        dec = official.decoder
        memory, shapes = dec._get_encoder_input(enc)
        theirs_idx = dec.enc_score_head(dec.enc_output(memory)).max(-1).values.topk(ours.num_queries)[1][0]
        ours_idx = ours.enc_class_head(ours.enc_output_norm(ours.enc_output(st.memory))).max(-1)[0].topk(
            ours.num_queries)[1][0]
    features = max((a - our_feats[k]).abs().max().item() for a, k in zip(feats, ours.encoder.in_features))
    encoder = max((a - b).abs().max().item() for a, b in zip(enc, our_enc))
    logits, boxes = out.logits[-1][0], out.boxes[-1][0]
    print(f"R{depth}: backbone max |diff| {features:.1e}, hybrid encoder {encoder:.1e}")
    print(f"R{depth}: query by query, max |logit diff| {(logits - ref['pred_logits'][0]).abs().max():.1e}, "
          f"max |box diff| {(boxes - ref['pred_boxes'][0]).abs().max():.1e}")
    if set(theirs_idx.tolist()) == set(ours_idx.tolist()):
        position = {int(v): j for j, v in enumerate(ours_idx)}
        perm = torch.tensor([position[int(v)] for v in theirs_idx])
        print(f"R{depth}: queries matched by memory position, max |logit diff| "
              f"{(logits[perm] - ref['pred_logits'][0]).abs().max():.1e}, max |box diff| "
              f"{(boxes[perm] - ref['pred_boxes'][0]).abs().max():.1e}")
    else:
        print(f"R{depth}: the two select different memory positions")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtdetr-src", required=True, help="a checkout's rtdetrv2_pytorch folder")
    parser.add_argument("--depth", type=int, nargs="+", default=[18, 50], choices=[18, 34, 50, 101])
    args = parser.parse_args(argv)
    missing = [m for m in MODULES if not os.path.isfile(os.path.join(args.rtdetr_src, m))]
    if missing:
        raise SystemExit(f"--rtdetr-src {args.rtdetr_src} is not RT-DETR's rtdetrv2_pytorch folder (no {missing[0]}): "
                         "clone https://github.com/lyuwenyu/RT-DETR and give its rtdetrv2_pytorch folder")
    classes = import_official(os.path.abspath(args.rtdetr_src))
    for depth in args.depth:
        compare(depth, classes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
