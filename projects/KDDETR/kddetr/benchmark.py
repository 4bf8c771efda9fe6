"""Timing and FLOP helpers of the cost tool (``tools/distill_cost.py``).

:func:`fixed_batches` takes a few training batches once, so every measured step sees the same
inputs; :func:`interleaved_times` times several steps in turn on them; :func:`gflops` counts a
forward's FLOPs with fvcore (through Detectron2's ``FlopCountAnalysis``), including PyTorch's
fused attention (:func:`sdpa_flop`), which fvcore has no formula for.
"""
from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

import torch
from detectron2.utils.analysis import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from .data import build_train_loader

__all__ = ["fixed_batches", "interleaved_times", "sdpa_flop", "gflops", "describe_device"]


def fixed_batches(loader_cfg, num: int = 4) -> List[List[Dict]]:
    """The first ``num`` batches of a LazyConfig train loader, read in the main process (sets
    ``loader_cfg.num_workers = 0``). Each batch is a list of Detectron2 dataset dicts
    (``"image"``: ``[3, H, W]`` uint8, ``"instances"``)."""
    loader_cfg.num_workers = 0
    it = iter(build_train_loader(loader_cfg)[0])
    return [next(it) for _ in range(num)]


def interleaved_times(steps: Dict[str, Callable[[int], Any]], num_batches: int, warmup: int, iters: int,
                      device: str) -> Dict[str, float]:
    """Median seconds of each ``steps[name](batch_index)`` over ``iters`` rounds after ``warmup``
    rounds. The steps take turns within a round (round ``i`` runs each on batch ``i % num_batches``),
    so slow phases of the machine hit all of them; CUDA is synchronised around every step."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    times: Dict[str, List[float]] = {k: [] for k in steps}
    for i in range(warmup + iters):
        for name, fn in steps.items():
            sync()
            t0 = time.perf_counter()
            fn(i % num_batches)
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def sdpa_flop(inputs, outputs) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention`` (no built-in formula): q ``[..., L, E]``,
    k ``[..., S, E]``, v ``[..., S, Ev]`` -> ``L * S * (E + Ev)`` multiply-adds per batch element
    (``q @ k^T`` and ``attn @ v``)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def gflops(model: nn.Module, inputs: List[Dict], skipped: Optional[Counter] = None) -> float:
    """Forward GFLOPs of ``model(inputs)`` (one multiply-add = one flop, fvcore's convention), in
    the model's current mode. Operators fvcore has no formula for are not counted; their names
    and counts are added to ``skipped``."""
    analysis = FlopCountAnalysis(model, (inputs,)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    total = analysis.total()
    if skipped is not None:
        skipped.update(analysis.unsupported_ops())
    return total / 1e9


def describe_device(device: str) -> str:
    """The GPU's name for a CUDA device, else ``"CPU, <n> threads"``."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU, {torch.get_num_threads()} threads"
