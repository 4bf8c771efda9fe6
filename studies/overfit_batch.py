#!/usr/bin/env python
"""Train a config's model on one fixed training batch and print its losses: does the training
path learn at all, and how fast, apart from generalisation and schedule?

    .venv/bin/python studies/overfit_batch.py --config-file configs/synthetic/dab_detr_r18.py --steps 150
    .venv/bin/python studies/overfit_batch.py --config-file configs/synthetic/dino_r18.py --steps 150

The model starts as train_net.py starts it (``train.init_checkpoint``, e.g. the synthetic
pretrained backbone), with the config's optimizer, and gradients clipped as
``train.clip_grad`` says. A single-model config only (a detector, not a distillation pair).
Prints the total loss and the last decoder layer's class / L1 / GIoU terms every ``--every``
steps (docs/RESULTS.md, "Why DAB-DETR and Conditional DETR learn slowly here").
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import instantiate  # noqa: E402
from detectron2.data import build_detection_train_loader  # noqa: E402
from detectron2.data.samplers import TrainingSampler  # noqa: E402

import kddetr  # noqa: E402,F401  (registers the datasets and the synthetic-backbone:// scheme)
from kddetr.config import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("opts", nargs="*", help="key=value overrides")
    args = parser.parse_args()
    os.chdir(ROOT)
    cfg = load_config(args.config_file, ["train.device=cpu", "dataloader.train.num_workers=0", *args.opts])
    if "student" in cfg.model:
        raise SystemExit(f"{args.config_file} is a distillation config: give a single-model config (its student's)")
    torch.manual_seed(args.seed)
    model = instantiate(cfg.model).to(cfg.train.device).train()
    if cfg.train.init_checkpoint:
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    # the same batch on every run: a seeded sampler and augmentation (Detectron2 draws them from numpy)
    np.random.seed(args.seed)
    dataset = instantiate(cfg.dataloader.train.dataset)
    loader = build_detection_train_loader(dataset=dataset, mapper=instantiate(cfg.dataloader.train.mapper),
                                          sampler=TrainingSampler(len(dataset), seed=args.seed),
                                          total_batch_size=cfg.dataloader.train.total_batch_size, num_workers=0)
    batch = next(iter(loader))
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    clip = cfg.train.clip_grad.params.max_norm if cfg.train.clip_grad.enabled else None
    print(f"{args.config_file}: one batch of {len(batch)} images, {args.steps} steps")
    t0 = time.perf_counter()
    for step in range(args.steps):
        losses = model(batch)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if step % args.every == 0 or step == args.steps - 1:
            terms = " ".join(f"{k} {losses[k].item():.3f}" for k in ("loss_class", "loss_bbox", "loss_giou"))
            print(f"step {step:4d}  total {total.item():6.2f}  {terms}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("overfit_batch.py"):  # the project's refusals: one message, no traceback
        main()
