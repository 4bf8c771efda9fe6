#!/usr/bin/env python
"""Training cost of the distillers side by side: fvcore FLOP counts and measured step times.

For the student alone and for each distillation config (default: the synthetic DINO R50 -> R18
pair with KD-DETR, DETRDistill, and both), on the same fixed training batches:

* FLOPs (detectron2's ``FlopCountAnalysis``, i.e. fvcore over a traced forward) of the
  teacher's inference forward, of the student's training forward alone, and of the whole
  distillation training forward. The distillation's own cost is
  ``KD = distillation forward - teacher inference - student training forward`` (the extra
  queries both decoders run, the matching and the losses) and, as DETRDistill's supplementary
  Table 3, its share is ``KD / (teacher + student + KD)``. Forward FLOPs only; PyTorch's fused
  attention is counted by :func:`sdpa_flop`, element-wise operators fvcore has no formula for
  (losses, activations) are not counted and are listed.
* Step times: forward + backward + optimizer step, median over ``--iters`` steps after
  ``--warmup``, the configs interleaved so that slow phases of the machine hit all of them.

    .venv/bin/python tools/distill_cost.py                       # synthetic DINO, the config's device
    .venv/bin/python tools/distill_cost.py --device cuda --iters 20

Writes ``--output`` (default output/distill_cost.md) and prints it.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CONFIGS = {
    "KD-DETR": "configs/synthetic/dino_r50_r18.py",
    "DETRDistill": "configs/synthetic/detrdistill_dino_r50_r18.py",
    "KD-DETR + DETRDistill": "configs/synthetic/kd_detr_detrdistill_dino_r50_r18.py",
}


def sdpa_flop(inputs, outputs) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention`` (no built-in formula): q ``[..., L, E]``,
    k ``[..., S, E]``, v ``[..., S, Ev]`` -> ``L * S * (E + Ev)`` multiply-adds per batch element
    (``q @ k^T`` and ``attn @ v``)."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def gflops(model, inputs, skipped: Counter) -> float:
    """Forward GFLOPs of ``model(inputs)`` (one multiply-add = one flop, fvcore's convention)."""
    import logging

    from detectron2.utils.analysis import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, (inputs,)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    total = analysis.total()
    skipped.update(analysis.unsupported_ops())
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="output/synthetic/dino_r50/model_final.pth",
                        help="teacher checkpoint (a random teacher is used if it does not exist: costs do not "
                        "depend on the weights)")
    parser.add_argument("--device", default="", help="default: the configs' train.device")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-flops", action="store_true")
    parser.add_argument("--output", default="output/distill_cost.md")
    args = parser.parse_args()
    os.chdir(ROOT)

    import torch
    from detectron2.config import LazyConfig, instantiate

    from benchmark_kd import fixed_batches, interleaved_times

    models, optimizers, cfg = {}, {}, None
    for name, path in CONFIGS.items():
        cfg = LazyConfig.load(path)
        if os.path.isfile(args.teacher):
            cfg.model.teacher_weights = args.teacher
        else:
            cfg.model.teacher_weights, cfg.model.allow_untrained_teacher = "", True
        device = args.device or cfg.train.device
        torch.manual_seed(0)
        models[name] = instantiate(cfg.model).to(device).train()
        cfg.optimizer.params.model = models[name]
        optimizers[name] = instantiate(cfg.optimizer)
    # the student alone: the same student architecture and initialisation, no teacher
    torch.manual_seed(0)
    alone = instantiate(cfg.model.student).to(device).train()
    cfg.optimizer.params.model = alone
    opt_alone = instantiate(cfg.optimizer)

    batches = fixed_batches(cfg.dataloader.train)
    batch_size = len(batches[0])
    lines = []
    dev = torch.cuda.get_device_name() if torch.device(device).type == "cuda" else f"CPU, {torch.get_num_threads()} threads"

    if not args.skip_flops:
        skipped: Counter = Counter()
        kd = models["KD-DETR"]
        kd.teacher.eval()
        teacher = gflops(kd.teacher, batches[0], skipped)
        stud = gflops(alone, batches[0], skipped)
        lines += [f"Forward GFLOPs per training batch ({batch_size} images of {tuple(batches[0][0]['image'].shape[1:])} "
                  "px), fvcore via detectron2.utils.analysis.FlopCountAnalysis:", "",
                  "| forward | GFLOPs | distillation's own cost | share of the total |", "|---|---|---|---|",
                  f"| teacher inference (R50) | {teacher:.2f} | | |",
                  f"| student training forward alone (R18) | {stud:.2f} | | |"]
        for name, model in models.items():
            total = gflops(model, batches[0], skipped)
            own = total - teacher - stud
            lines.append(f"| {name} training forward (teacher + student + distillation) | {total:.2f} | "
                         f"{own:.2f} | {100 * own / total:.1f} % |")
        lines += ["", "Share = distillation's own / (teacher + student + distillation), as DETRDistill's supplementary "
                  "Table 3. Operators without an fvcore formula, not counted: "
                  + ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items())) + ".", ""]

    def step(model, optimizer, batch):
        losses = model(batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    runs = {"student alone": (alone, opt_alone), **{n: (models[n], optimizers[n]) for n in models}}
    steps = {name: (lambda i, m=m, o=o: step(m, o, batches[i])) for name, (m, o) in runs.items()}
    med = interleaved_times(steps, len(batches), args.warmup, args.iters, device)
    base = med["student alone"]
    lines += [f"Training step time (forward + backward + AdamW step), batch {batch_size}, {dev}, median of "
              f"{args.iters} steps after {args.warmup} warm-up:", "",
              "| step | seconds | vs the student alone |", "|---|---|---|"]
    lines += [f"| {name} | {t:.3f} | {t / base:.2f}x |" for name, t in med.items()]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
