#!/usr/bin/env python
"""What the teacher predicts on each distillation point set of a pair config: mean top-class
probability, share of points above 0.3, mean box width and height (last decoder layer), on a
few synthetic images. A quick check that random general points are not out of the teacher's
distribution.

    .venv/bin/python tools/probe_points.py --config-file configs/synthetic/deformable_detr_r50_r18.py \\
        model.teacher_weights=output/synthetic/deformable_detr_r50/model_final.pth
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout


def synthetic_inputs(num: int, size: int, seed: int):
    import numpy as np
    import torch

    from kddetr.data.synthetic import render_image

    rng = np.random.default_rng(seed)
    return [{"image": torch.as_tensor(render_image(rng, size)[0].transpose(2, 0, 1).copy()), "height": size,
             "width": size} for _ in range(num)]


def main() -> None:
    from kddetr.config import config_argument_parser, load_config

    parser = config_argument_parser(__doc__, "a teacher/student pair config")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from detectron2.config import instantiate

    cfg = load_config(args.config_file, args.opts)
    cfg.model.detrdistill = None
    model = instantiate(cfg.model).eval()
    with torch.no_grad():
        step = model.teacher_predictions(synthetic_inputs(args.images, args.size, args.seed),
                                         model.sample_points(torch.Generator().manual_seed(args.seed)))
    print("| point set | points | mean top-class prob | share > 0.3 | mean box w | mean box h |")
    print("|---|---|---|---|---|---|")
    for group, out in step.outputs.items():
        p = out.logits[-1].sigmoid().max(-1)[0]
        wh = out.boxes[-1][..., 2:]
        print(f"| {group} | {p.shape[1]} | {p.mean():.3f} | {(p > 0.3).float().mean():.3f} | "
              f"{wh[..., 0].mean():.3f} | {wh[..., 1].mean():.3f} |")


if __name__ == "__main__":
    main()
