#!/usr/bin/env python
"""Host syncs per training step: every call of one trainer step that makes the host wait for an accelerator,
counted on the CPU, by configuration and by the line that makes it.

Counted (:class:`SyncCount`): ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``, ``bool()`` / ``int()`` /
``float()`` of a tensor, and a tensor made from host data with a ``device`` (``torch.tensor`` /
``torch.as_tensor``). Tensors made on the host (by a factory with ``device="cpu"`` or none, as the optimizers'
step counters) and what ``.cpu()`` returned are host tensors: reading them costs nothing. ``.to(device)`` is
not counted: on the CPU a copy to the host cannot be told from one to the model's device. The step measured
is the second (the first builds lazy state) and not a metric-writing one (see the table's last column).

Each config is built as train_net.py builds it, with a random teacher (the counts do not depend on weights),
on two rendered synthetic images of 128 x 128 (nor on the image size). ``--root`` counts another checkout's
package and configs (e.g. a worktree of an older commit: the "before" of docs/RESULTS.md).

    .venv/bin/python studies/count_syncs.py
    git worktree add /tmp/before 1ab1c3b && .venv/bin/python studies/count_syncs.py --root /tmp/before
"""
from __future__ import annotations

import argparse
import os
import sys
import weakref
from collections import Counter
from typing import Tuple

import torch
from torch.overrides import TorchFunctionMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: factories: a tensor one of them makes without a ``device`` is on the host (the default device), as the
#: optimizers' step counters; tests/test_device.py keeps the package from making any in a step
FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.tensor, torch.as_tensor,
             torch.rand, torch.randn, torch.randint, torch.randperm, torch.linspace, torch.eye, torch.scalar_tensor}
SYNCING = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__, torch.Tensor.cpu,
           torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__}
#: the shipped pairs (each distiller, and the real-time student) and single models counted by default
CONFIGS = ["configs/dino_r50.py", "configs/rtdetr_r18.py", "configs/dino_r50_r18.py",
           "configs/detrdistill_dino_r101_r18.py", "configs/kd_detr_detrdistill_dino_r50_r18.py",
           "configs/dino_r50_rtdetr_r18.py", "configs/synthetic/ablations/dino_r50_r18_similar_general.py"]


class SyncCount(TorchFunctionMode):
    """Counts the syncing calls made under it, by ``what at file:line`` (the innermost frame outside torch)."""

    def __init__(self, root: str = ROOT):
        super().__init__()
        self.root, self.calls, self._host = root, Counter(), {}  # _host: id -> weak reference of host storages

    def is_host(self, t: torch.Tensor) -> bool:
        storage = t.untyped_storage()
        ref = self._host.get(id(storage))
        return ref is not None and ref() is storage

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in SYNCING and not self.is_host(args[0]):
            self._count(func.__name__)
        if func in (torch.tensor, torch.as_tensor) and args and not isinstance(args[0], torch.Tensor) \
                and kwargs.get("device") not in (None, "cpu"):
            self._count(f"{func.__name__} of host data")
        if isinstance(out, torch.Tensor) and (func is torch.Tensor.cpu or func in FACTORIES and kwargs.get(
                "device") in (None, "cpu")):
            self._host[id(out.untyped_storage())] = weakref.ref(out.untyped_storage())
        return out

    def _count(self, what: str) -> None:
        frame = sys._getframe(2)
        while frame is not None and os.sep + "torch" + os.sep in frame.f_code.co_filename:
            frame = frame.f_back
        where = os.path.relpath(frame.f_code.co_filename, self.root) if frame is not None else "?"
        self.calls[f"{what} at {where}:{frame.f_lineno if frame is not None else 0}"] += 1


def step_syncs(trainer, log_period: int = 20) -> Tuple[Counter, Counter]:
    """The syncs of a trainer step that does not write the metrics (every ``log_period`` iterations) and of one
    that does. The first step, which builds lazy state (the optimizer's), is watched too, so the host tensors it
    makes are known, and not counted."""
    from detectron2.utils.events import EventStorage

    trainer.max_iter, counted = 100, []
    with EventStorage(0) as trainer.storage, SyncCount() as count:
        for iteration, period in ((0, log_period), (1, log_period), (2, 1)):
            count.calls.clear()
            trainer.iter, trainer.gather_metric_period = iteration, period
            trainer.run_step()
            counted.append(Counter(count.calls))
    return counted[1], counted[2]


def rendered_batch(num: int = 2, size: int = 128, seed: int = 0):
    """Detectron2 training inputs rendered by the synthetic generator (no files)."""
    import numpy as np
    from detectron2.structures import Boxes, Instances

    from kddetr.data.synthetic import render_image

    rng, batch = np.random.default_rng(seed), []
    while len(batch) < num:
        img, objects = render_image(rng, size)
        if not objects:
            continue
        inst = Instances((size, size))
        xywh = torch.tensor([o["bbox"] for o in objects], dtype=torch.float32)
        inst.gt_boxes = Boxes(torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))
        inst.gt_classes = torch.tensor([o["category"] for o in objects]) % 80
        batch.append({"image": torch.as_tensor(img.transpose(2, 0, 1).copy()), "height": size, "width": size,
                      "instances": inst})
    return batch


def trainer_of(config: str):
    from detectron2.config import instantiate

    from kddetr.config import load_config
    from kddetr.engine import DistillTrainer, Trainer

    cfg = load_config(config, ["train.device=cpu"])
    distill = "student" in cfg.model
    if distill:
        cfg.model.teacher_weights, cfg.model.allow_untrained_teacher = "", True
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    return (DistillTrainer if distill else Trainer)(model, [rendered_batch()] * 4, optimizer, device="cpu", seed=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=[], help=f"a config to count (repeatable; default: "
                        f"{', '.join(CONFIGS)})")
    parser.add_argument("--root", default=ROOT, help="the checkout whose package and configs are counted")
    parser.add_argument("--by-line", action="store_true", help="also list every syncing line")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    sys.path.insert(0, os.path.join(root, "projects", "KDDETR"))
    sys.path.insert(0, root)
    os.chdir(root)
    import kddetr  # noqa: F401  (registers the datasets and the synthetic-backbone:// scheme)

    print(f"Host syncs of one training step (CPU count; {root}):\n")
    print("| config | syncs per step | of which matching copies | metric writing adds |")
    print("|---|---|---|---|")
    details = []
    for config in args.config or CONFIGS:
        trainer = trainer_of(config)
        calls, writing = step_syncs(trainer)
        matching = sum(n for where, n in calls.items() if "matcher.py" in where or "detrdistill.py" in where
                       and "cpu at" in where)
        total = sum(calls.values())
        print(f"| {config} | {total} | {matching} | {sum(writing.values()) - total} |")
        details.append((config, calls))
    if args.by_line:
        for config, calls in details:
            print(f"\n{config}:")
            for where, n in calls.most_common():
                print(f"  {n} x {where}")


if __name__ == "__main__":
    main()
