#!/usr/bin/env python
"""What a trained single-scale DETR (DAB-DETR, Conditional DETR) makes of its input: the scale of the
projected backbone level the encoder reads, and whether the decoder's boxes depend on the image.

    .venv/bin/python studies/probe_single_scale.py --config-file configs/synthetic/dab_detr_r50.py \\
        --checkpoint output/synthetic/dab_detr_r50/model_final.pth

Prints, on the first ``--images`` images of the config's test set, in eval mode:

* ``projection std``: the standard deviation of ``input_proj`` of the backbone level (before the
  optional GroupNorm) and of what the encoder receives (after it);
* ``box std across images`` (per query, averaged over queries) against ``across queries`` (per image,
  averaged over images) of the last decoder layer's boxes: a decoder that has not learned to read the
  memory predicts each query's box whatever the image, so the first is near 0 while the second is not.

Give the config the checkpoint was trained with, with the same ``key=value`` overrides
(docs/RESULTS.md, "Why DAB-DETR and Conditional DETR learn slowly here").
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import torch  # noqa: E402
from detectron2.config import instantiate  # noqa: E402

import kddetr  # noqa: E402,F401  (registers the datasets)
from kddetr.checkpoint import CheckpointError, load_strict  # noqa: E402
from kddetr.config import load_config  # noqa: E402
from kddetr.modeling.seam import QueryGroup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a single-scale single-model config")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("opts", nargs="*", help="key=value overrides the checkpoint was trained with")
    args = parser.parse_args()
    os.chdir(ROOT)
    cfg = load_config(args.config_file, ["train.device=cpu", *args.opts])
    if "student" in cfg.model or "input_norm_groups" not in cfg.model:
        raise SystemExit(f"{args.config_file}: give a DAB-DETR or Conditional DETR single-model config")
    model = instantiate(cfg.model).eval()
    try:
        load_strict(model, args.checkpoint, key="--checkpoint")
    except (CheckpointError, FileNotFoundError) as e:
        raise SystemExit(str(e))
    batch = []
    for inputs in instantiate(cfg.dataloader.test):
        batch += inputs
        if len(batch) >= args.images:
            break
    seen = {}  # what encode() computes on the way: the projection and the (normalised) encoder input
    model.input_proj.register_forward_hook(lambda mod, args, out: seen.update(projected=out))
    model.input_norm.register_forward_hook(lambda mod, args, out: seen.update(encoder_input=out))
    with torch.no_grad():
        images, padding_mask = model.preprocess_image(batch[: args.images])
        state = model.encode(images, padding_mask)
        boxes = model.decode(state, [QueryGroup("det", model.default_queries(state))])[0].boxes[-1]  # [B, N, 4]
    print(f"{args.checkpoint} on {len(batch[: args.images])} images of {cfg.dataloader.test.dataset.names}")
    print(f"projection std {seen['projected'].std():.3f}, encoder input std {seen['encoder_input'].std():.3f}")
    print(f"box std across images {boxes.std(0).mean():.4f}, across queries {boxes.std(1).mean():.4f}")


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("probe_single_scale.py"):  # the project's refusals: one message, no traceback
        main()
