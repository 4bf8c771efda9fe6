#!/usr/bin/env python
"""Training cost of the distillers side by side: fvcore FLOP counts and measured step times.

For the student alone and for each distillation config (default: the synthetic ``--family``
R50 -> R18 pair with KD-DETR and, where their configs exist (DINO), DETRDistill and both;
``--config``, repeatable, names other configs), on the same fixed training batches:

* FLOPs (detectron2's ``FlopCountAnalysis``, i.e. fvcore over a traced forward) of the
  teacher's inference forward, of the student's training forward alone, and of the whole
  distillation training forward. The distillation's own cost is
  ``KD = distillation forward - teacher inference - student training forward`` (the extra
  queries both decoders run, the matching and the losses) and, as DETRDistill's supplementary
  Table 3, its share is ``KD / (teacher + student + KD)``. Forward FLOPs only; PyTorch's fused
  attention is counted by :func:`kddetr.benchmark.sdpa_flop`, element-wise operators fvcore
  has no formula for (losses, activations) are not counted and are listed.
* Peak memory of each step, run once before the timing (CUDA: ``max_memory_allocated``; CPU: the
  process's resident set sampled every 2 ms), and in brackets the step's own share, the peak
  minus what was in memory when it started (:func:`kddetr.benchmark.peak_memory_mib`). The peak
  includes every model the tool holds (all configs' teachers and students). On the CPU also an estimate of
  an accelerator's memory for the step: the bytes of the step's model and optimizer (weights, buffers,
  gradients, optimizer states) plus the peak of the step's own live tensors
  (:class:`kddetr.benchmark.LiveTensors`), float32.
* Step times: forward + backward + optimizer step, median over ``--iters`` steps after
  ``--warmup``, every step interleaved with the others so that slow phases of the machine hit
  all of them. Each distillation step is also split: the teacher's inference on its
  distillation queries (``KDDETR.teacher_predictions``), and a student step that decodes the
  same query groups in its fused pass (``KDDETR.student_step``) but trains on its detection
  losses only; the rest of the distillation step is the distillation losses and point sampling.

The configs are expected to share the teacher and the student: the first config's are the ones
counted alone. Trailing ``key=value`` overrides apply to every config.

    .venv/bin/python studies/distill_cost.py                       # synthetic DINO, the config's device
    .venv/bin/python studies/distill_cost.py --device cuda --iters 20
    .venv/bin/python studies/distill_cost.py --family deformable_detr --skip-flops
    .venv/bin/python studies/distill_cost.py --config configs/synthetic/dino_r50_r18.py model.points.0.num=50
    # at the user's scale: the COCO pair, 2 images (the per-GPU batch) of 800 x 1333
    .venv/bin/python studies/distill_cost.py --config configs/dino_r50_r18.py --size 800 1333 --batch 2 \
        --iters 3 --warmup 1 --skip-flops

Writes ``--output`` (default output/distill_cost.md) and prints it.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import TYPE_CHECKING, Callable, Dict, List

if TYPE_CHECKING:
    import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

# label -> configs/synthetic/<prefix><family>_r50_r18.py
FAMILY_CONFIGS = {"KD-DETR": "", "DETRDistill": "detrdistill_", "KD-DETR + DETRDistill": "kd_detr_detrdistill_"}


def family_configs(family: str) -> Dict[str, str]:
    """The synthetic distillation configs of ``family`` that exist, by label."""
    configs = {label: f"configs/synthetic/{prefix}{family}_r50_r18.py" for label, prefix in FAMILY_CONFIGS.items()}
    configs = {label: path for label, path in configs.items() if os.path.isfile(path)}
    if not configs:
        raise SystemExit(f"--family {family}: there is no configs/synthetic/{family}_r50_r18.py")
    return configs


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def distillation_steps(name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: List[List[Dict]]
                       ) -> Dict[str, Callable[[int], None]]:
    """The three timed steps of a ``KDDETR`` model, by row label and in this order: its teacher's
    inference, its student's step over the same query groups without the distillation losses, and
    its training step. Each takes the index of a batch of ``batches``."""
    import torch

    generator = torch.Generator().manual_seed(0)
    # the teacher's side of each batch once: the student step below decodes its queries
    teachers = [model.teacher_predictions(b, model.sample_points(generator)) for b in batches]
    num_queries = sum(q.num for q in teachers[0].queries.values())

    def teacher_inference(i: int) -> None:
        model.teacher_predictions(batches[i], model.sample_points(generator))

    def student_step(i: int) -> None:
        losses, outputs, _, _ = model.student_step(batches[i], teachers[i])
        # every group's predictions join the backward pass at weight 0: their cost without the distillation losses
        unused = sum(out.logits.sum() + out.boxes.sum() for out in outputs.values()) * 0.0
        optimizer_step(optimizer, sum(losses.values()) + unused)

    def training_step(i: int) -> None:
        optimizer_step(optimizer, sum(model(batches[i], distill_points=model.sample_points(generator)).values()))

    return {f"{name}: teacher inference, {num_queries} queries (no_grad)": teacher_inference,
            f"{name}: student step decoding the same groups, no distillation loss": student_step,
            f"{name}: training step (teacher + fused student pass + distillation losses)": training_step}


def flops_report(teacher: torch.nn.Module, alone: torch.nn.Module, models: Dict[str, torch.nn.Module],
                 batch: List[Dict]) -> List[str]:
    """Markdown lines: forward GFLOPs of the teacher's inference, the student's training forward
    and each distillation training forward on ``batch``, and the distillation's own share."""
    from kddetr.benchmark import gflops

    skipped: Counter = Counter()
    t_flops, s_flops = gflops(teacher, batch, skipped), gflops(alone, batch, skipped)
    lines = [f"Forward GFLOPs per training batch ({len(batch)} images of {tuple(batch[0]['image'].shape[1:])} px), "
             "fvcore via detectron2.utils.analysis.FlopCountAnalysis:", "",
             "| forward | GFLOPs | distillation's own cost | share of the total |", "|---|---|---|---|",
             f"| teacher inference | {t_flops:.2f} | | |",
             f"| student training forward alone | {s_flops:.2f} | | |"]
    for name, model in models.items():
        total = gflops(model, batch, skipped)
        own = total - t_flops - s_flops
        lines.append(f"| {name} training forward (teacher + student + distillation) | {total:.2f} | {own:.2f} | "
                     f"{100 * own / total:.1f} % |")
    return lines + ["", "Share = distillation's own / (teacher + student + distillation), as DETRDistill's "
                    "supplementary Table 3. Operators without an fvcore formula, not counted: "
                    + ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items())) + ".", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="dino", help="synthetic family whose configs are measured (default: "
                        "dino)")
    parser.add_argument("--config", action="append", default=[],
                        help="a distillation config to measure instead of the family's (repeatable)")
    parser.add_argument("--teacher", default="", help="teacher checkpoint (default: the --config's "
                        "model.teacher_weights, else output/synthetic/<family>_r50/model_final.pth; a random teacher "
                        "is used if it does not exist: costs do not depend on the weights)")
    parser.add_argument("--device", default="", help="default: the first config's train.device")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-flops", action="store_true")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="resize the training batches' images to H x W (e.g. 800 1333: a step at COCO scale from "
                        "the synthetic images; the batches come from configs/synthetic/dino_r18.py's loader)")
    parser.add_argument("--batch", type=int, default=0, help="images per step (default: the loader's "
                        "total_batch_size: the first config's, or the synthetic loader's 8 with --size)")
    parser.add_argument("--output", default="output/distill_cost.md")
    parser.add_argument("opts", nargs="*", help="key=value overrides for every config")
    args = parser.parse_args()
    os.chdir(ROOT)

    import torch
    from detectron2.config import instantiate

    from kddetr.benchmark import (
        describe_device,
        fixed_batches,
        held_mib,
        interleaved_times,
        peak_memory_mib,
        resized_batches,
    )
    from kddetr.config import load_config

    configs = {os.path.basename(p)[:-3]: p for p in args.config} if args.config else family_configs(args.family)
    cfgs = {name: load_config(path, args.opts) for name, path in configs.items()}
    first = next(iter(cfgs.values()))
    # --config: the config's own teacher checkpoint if it is on disk; a family: its synthetic teacher
    teacher = args.teacher or (first.model.teacher_weights if args.config
                               else f"output/synthetic/{args.family}_r50/model_final.pth")
    device = args.device or first.train.device
    models, optimizers = {}, {}
    for name, cfg in cfgs.items():
        if os.path.isfile(teacher):
            cfg.model.teacher_weights = teacher
        else:
            cfg.model.teacher_weights, cfg.model.allow_untrained_teacher = "", True
        torch.manual_seed(0)
        models[name] = instantiate(cfg.model).to(device).train()
        cfg.optimizer.params.model = models[name]
        optimizers[name] = instantiate(cfg.optimizer)
    # the student alone: the same student architecture and initialisation, no teacher
    torch.manual_seed(0)
    alone = instantiate(first.model.student).to(device).train()
    first.optimizer.params.model = alone
    opt_alone = instantiate(first.optimizer)

    loader = first.dataloader.train
    if args.size:  # COCO-scale configs: their data is not needed, only images of that size
        loader = load_config("configs/synthetic/dino_r18.py").dataloader.train
    if args.batch:
        loader.total_batch_size = args.batch
    batches = fixed_batches(loader)
    if args.size:
        batches = resized_batches(batches, tuple(args.size))
    lines = [", ".join(f"{name}: {path}" for name, path in configs.items()) + "; teacher: "
             + (teacher if os.path.isfile(teacher) else f"random ({teacher} does not exist)") + ".", ""]
    if not args.skip_flops:
        lines += flops_report(next(iter(models.values())).teacher, alone, models, batches[0])

    steps = {"student alone": lambda i: optimizer_step(opt_alone, sum(alone(batches[i]).values()))}
    parts = {}  # name -> labels of its teacher inference, student step and training step
    for name, model in models.items():
        model_steps = distillation_steps(name, model, optimizers[name], batches)
        parts[name] = list(model_steps)
        steps.update(model_steps)
    # what an accelerator would hold for a step: what its model and optimizer hold before it, and the peak of
    # the step's own tensors
    holders = {"student alone": lambda: held_mib(alone, opt_alone)}
    for name, labels in parts.items():
        holders.update({label: (lambda m=models[name], o=optimizers[name]: held_mib(m, o)) for label in labels})
    memory = peak_memory_mib(steps, device, holders)  # once each, lightest first, before the timing
    held = {name: values[3] for name, values in memory.items()}
    med = interleaved_times(steps, len(batches), args.warmup, args.iters, device)
    base = med["student alone"]
    size = tuple(batches[0][0]["image"].shape[1:])
    cuda = torch.device(device).type == "cuda"
    mem_label = "CUDA max allocated MiB (the step's own)" if cuda else \
        "peak RSS MiB (the step's own) | accelerator estimate MiB: held + the step's tensors"
    lines += [f"Training step time (forward + backward + optimizer step), batch {len(batches[0])} of {size[0]} x "
              f"{size[1]} px, {describe_device(device)}, median of {args.iters} steps after {args.warmup} warm-up:", "",
              f"| step | seconds | vs the student alone | {mem_label} |",
              "|---|---|---|---|" + ("" if cuda else "---|")]
    lines += [f"| {name} | {t:.3f} | {t / base:.2f}x | {memory[name][0]:.0f} ({memory[name][1]:.0f}) |"
              + ("" if cuda else f" {held[name] + memory[name][2]:.0f} = {held[name]:.0f} + {memory[name][2]:.0f} |")
              for name, t in med.items()]
    if not cuda:
        lines += ["", "The accelerator estimate is the bytes of the tensors a CUDA step would hold, counted on this "
                  "CPU step (kddetr.benchmark.LiveTensors, held_mib): the models' weights and buffers and the "
                  "optimizer's states before the step, plus the peak of the step's own tensors (gradients "
                  "included); without the CUDA context, "
                  "the caching allocator's rounding and fragmentation and library workspaces (add roughly 0.5-1 "
                  "GiB), and in float32 (no mixed precision). Not measured on a GPU."]
    lines.append("")
    for name, labels in parts.items():
        t, sp, kd = (med[label] for label in labels)
        lines.append(f"* {name}: step / (student alone + teacher inference) = {kd / (base + t):.2f}x; of the step, "
                     f"{t:.3f} s is the teacher, {sp - base:.3f} s the student decoding the distillation queries and "
                     f"{kd - sp - t:.3f} s the rest (distillation losses, point sampling).")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("distill_cost.py"):  # the project's refusals: one message, no traceback
        main()
