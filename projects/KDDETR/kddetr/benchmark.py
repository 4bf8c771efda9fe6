"""Timing, memory and FLOP helpers of the cost tools (``studies/distill_cost.py``,
``tools/benchmark_inference.py``).

:func:`fixed_batches` takes a few training batches once, so every measured step sees the same
inputs; :func:`interleaved_times` times several steps in turn on them; :func:`gflops` counts a
forward's FLOPs with fvcore (through Detectron2's ``FlopCountAnalysis``), including PyTorch's
fused attention (:func:`sdpa_flop`), which fvcore has no formula for (fvcore counts the
deformable attention's ``grid_sample`` itself: 4 multiply-adds per sampled value, bilinear).
"""
from __future__ import annotations

import ctypes
import logging
import os
import statistics
import threading
import time
import weakref
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from detectron2.utils.analysis import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .data import build_train_loader

__all__ = ["fixed_batches", "resized_batches", "peak_memory_mib", "interleaved_times", "sdpa_flop", "gflops",
           "describe_device", "LiveTensors", "held_mib"]


def fixed_batches(loader_cfg, num: int = 4) -> List[List[Dict]]:
    """The first ``num`` batches of a LazyConfig train loader, read in the main process (sets
    ``loader_cfg.num_workers = 0``). Each batch is a list of Detectron2 dataset dicts
    (``"image"``: ``[3, H, W]`` uint8, ``"instances"``)."""
    loader_cfg.num_workers = 0
    it = iter(build_train_loader(loader_cfg)[0])
    return [next(it) for _ in range(num)]


def resized_batches(batches: List[List[Dict]], size: Tuple[int, int]) -> List[List[Dict]]:
    """``batches`` with every image and its ground-truth boxes resized to ``size`` = (H, W): training
    batches at another resolution (e.g. COCO's 800 x 1333 from the synthetic images, to measure a
    step at the user's scale without COCO on disk)."""
    from detectron2.data.transforms import ResizeTransform
    from detectron2.structures import Boxes, Instances

    H, W = size
    out = []
    for batch in batches:
        resized = []
        for d in batch:
            h, w = d["image"].shape[1:]
            t = ResizeTransform(h, w, H, W)
            resized_hwc = t.apply_image(d["image"].permute(1, 2, 0).numpy()).copy()  # PIL's array is read-only
            image = torch.from_numpy(resized_hwc).permute(2, 0, 1).contiguous()
            inst = Instances((H, W))
            inst.gt_classes = d["instances"].gt_classes
            inst.gt_boxes = Boxes(torch.from_numpy(t.apply_box(d["instances"].gt_boxes.tensor.numpy())).float())
            resized.append({**d, "image": image, "instances": inst, "height": H, "width": W})
        out.append(resized)
    return out


def current_rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class _RSSSampler(threading.Thread):
    """Polls the resident set size every ``period`` seconds until stopped; keeps the maximum."""

    def __init__(self, period: float = 0.002):
        super().__init__(daemon=True)
        self.period, self.peak, self._stop_event = period, current_rss_mib(), threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, current_rss_mib())
            time.sleep(self.period)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, current_rss_mib())


def release_free_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).
    Without it a step can reuse pages an earlier step freed but the allocator kept resident, and
    its RSS growth would read as nothing."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class LiveTensors(TorchDispatchMode):
    """The bytes of the tensors created under it that are alive, and their peak (``peak_bytes``): each storage
    counted once (views share it) from the op that made it until its last reference goes. On the CPU this is
    what a device's allocator would have to hold for the same step, without the allocator's rounding and
    caching, the CUDA context or library workspaces: the basis of an accelerator memory estimate made here."""

    def __init__(self):
        super().__init__()
        self.live_bytes = self.peak_bytes = 0
        self._live = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # a view or an in-place result shares an input's storage: not a new one (a weight's transpose, an update)
        inputs = {id(t.untyped_storage()) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                if id(storage) not in self._live and id(storage) not in inputs:
                    n = storage.nbytes()
                    self._live.add(id(storage))
                    self.live_bytes += n
                    self.peak_bytes = max(self.peak_bytes, self.live_bytes)
                    weakref.finalize(storage, self._free, id(storage), n)
        return out

    def _free(self, key: int, nbytes: int) -> None:
        if key in self._live:
            self._live.discard(key)
            self.live_bytes -= nbytes


def held_mib(*objects: Any) -> float:
    r"""MiB of what stays in memory between steps: the parameters and buffers of the ``nn.Module``\ s and the state
    of the optimizers among ``objects`` (each storage once). Gradients are not counted: ``zero_grad()`` frees them
    and the step's backward makes them again (they are the step's tensors)."""
    tensors = []
    for obj in objects:
        if isinstance(obj, nn.Module):
            tensors += list(obj.parameters()) + list(obj.buffers())
        elif isinstance(obj, torch.optim.Optimizer):
            tensors += [v for state in obj.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    storages = {id(t.untyped_storage()): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values()) / 2 ** 20


def peak_memory_mib(steps: Dict[str, Callable[[int], Any]], device: str,
                    held: Optional[Dict[str, Callable[[], float]]] = None) -> Dict[str, Tuple[float, ...]]:
    """Run each ``steps[name](0)`` once, in order; per step ``(peak, growth, tensors)`` in MiB, and with ``held``
    (name -> a function giving the MiB the step's model and optimizer hold, e.g. :func:`held_mib`) a fourth value,
    that taken right before the step (what the step itself makes, such as the optimizer's first states, is in
    ``tensors``).

    CUDA: ``peak`` is ``max_memory_allocated`` during the step (everything allocated at its start
    included: weights, optimizer states) and ``growth`` that peak minus what was allocated at its
    start (the step's own activations and temporaries). CPU: the same for the process's resident
    set (RSS), sampled every 2 ms by a thread (a peak shorter than that can be missed), after the
    heap's free pages are released (:func:`release_free_heap`); ``peak`` includes the
    Python/PyTorch runtime and every model the process holds. ``tensors``: the peak of the step's own
    tensors (:class:`LiveTensors`; on CUDA the same as ``growth``), what an accelerator would hold for them."""
    out = {}
    for name, fn in steps.items():
        before = (held[name](),) if held else ()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
            start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            fn(0)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            out[name] = (peak / 2 ** 20, (peak - start) / 2 ** 20, (peak - start) / 2 ** 20) + before
        else:
            release_free_heap()
            start = current_rss_mib()
            sampler = _RSSSampler()
            sampler.start()
            try:
                with LiveTensors() as tensors:
                    fn(0)
            finally:
                peak = sampler.stop()
            out[name] = (peak, peak - start, tensors.peak_bytes / 2 ** 20) + before
    return out


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
