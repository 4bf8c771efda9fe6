#!/usr/bin/env python
"""Write the synthetic shapes dataset in COCO format.

    python tools/make_synthetic_coco.py                       # the registered default location
    python tools/make_synthetic_coco.py --root /tmp/shapes --num-train 500 --num-val 100 --seed 7
    python tools/make_synthetic_coco.py --root /tmp/hard --class-color-prob 0.5 --max-distractors 3

Without options it writes exactly what ``synthetic_train`` / ``synthetic_val`` load
(``$DETECTRON2_DATASETS/kddetr_synthetic_v1``). With options it writes a custom copy that
can be trained on with the ``user_dataset.*`` keys of any config.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

from kddetr.data import synthetic  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="output folder (default: the registered location)")
    p.add_argument("--num-train", type=int, default=synthetic.SPLITS["train"][0])
    p.add_argument("--num-val", type=int, default=synthetic.SPLITS["val"][0])
    p.add_argument("--seed", type=int, default=0, help="seed of the train split; val uses seed + 1")
    p.add_argument("--size", type=int, default=synthetic.IMAGE_SIZE, help="image side in pixels")
    p.add_argument("--class-color-prob", type=float, default=synthetic.CLASS_COLOR_PROB,
                   help="share of objects painted in their class colour (lower = harder)")
    p.add_argument("--max-distractors", type=int, default=synthetic.MAX_DISTRACTORS,
                   help="unlabeled clutter blobs per image, at most (higher = harder)")
    args = p.parse_args()

    defaults = (synthetic.SPLITS["train"][0], synthetic.SPLITS["val"][0], 0, synthetic.IMAGE_SIZE,
                synthetic.CLASS_COLOR_PROB, synthetic.MAX_DISTRACTORS)
    custom = args.root or (args.num_train, args.num_val, args.seed, args.size, args.class_color_prob,
                           args.max_distractors) != defaults
    if not custom:
        print(f"dataset ready in {synthetic.ensure_generated()}")
        return
    root = args.root or os.path.join("datasets", "kddetr_synthetic_custom")
    for split, num, seed in (("train", args.num_train, args.seed), ("val", args.num_val, args.seed + 1)):
        path = synthetic.write_split(root, split, num, seed, args.size, args.class_color_prob, args.max_distractors)
        print(f"{split}: {num} images -> {path}")
    print(f"train on it with: user_dataset.train_json={root}/annotations/instances_train.json "
          f"user_dataset.train_images={root}/train user_dataset.test_json={root}/annotations/instances_val.json "
          f"user_dataset.test_images={root}/val")


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("make_synthetic_coco.py"):  # the project's refusals: one message, no traceback
        main()
