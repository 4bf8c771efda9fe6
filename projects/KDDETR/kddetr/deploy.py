"""A detector as one traced graph, for serving without Python's model code: TorchScript and ONNX.

:class:`DeployableDetector` is the whole eval path of a DETR of this package (normalisation,
backbone, encoder, query selection, decoder, top-k) as one ``forward`` of tensors, so that
``torch.jit.trace`` and ``torch.onnx.export`` can record it. ``tools/export_student.py --format
torchscript|onnx`` writes it; :func:`run_exported` runs either file.

Input contract of the exported graph (also written to ``<file>.json`` beside it):

* ``image``: ``float32 [1, 3, H, W]``, pixel values 0-255 in the model's ``input_format``
  channel order (``RGB`` for every config of this package; ``cv2.imread`` gives BGR: flip it),
  already resized to exactly the export size ``H x W`` (the size is fixed when the graph is
  traced: the number of feature positions per level is a constant of the graph).
  No normalisation: the graph subtracts ``pixel_mean`` and divides by ``pixel_std`` itself.
* Outputs, best first: ``boxes`` ``float32 [k, 4]`` absolute ``(x0, y0, x1, y1)`` in the pixels of
  the ``H x W`` input (scale them by ``original / export`` size to the original image), ``scores``
  ``float32 [k]`` (sigmoid, no threshold), ``labels`` ``int64 [k]`` (contiguous class ids, as
  ``pred_classes``), with ``k = min(select_box_nums_for_evaluation, queries x classes)``.

These are the values of ``DETRBase.inference`` on the same resized image without padding, so
:class:`~kddetr.export.StudentPredictor` and the exported graph agree up to float rounding
(``tests/test_deploy.py`` checks both formats), except that the graph always returns ``k``
detections where Detectron2's ``detector_postprocess`` drops boxes that are empty after clipping.
A model with ``size_divisibility > 0`` is exported only at a size that needs no padding.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from typing import Dict, Tuple

import numpy as np
import torch
from detectron2.structures import ImageList
from torch import Tensor, nn

from .modeling.groups import DETECTION
from .modeling.hybrid_encoder import fuse_repvgg
from .modeling.seam import QueryGroup

#: the formats ``export_detector`` writes, with their file suffix
FORMATS = {"torchscript": ".ts", "onnx": ".onnx"}
OUTPUT_NAMES = ("boxes", "scores", "labels")


class DeployableDetector(nn.Module):
    """``image [1, 3, H, W]`` float pixels -> ``boxes [k, 4]`` xyxy pixels, ``scores [k]``, ``labels [k]``.

    Wraps a detector of this package (any family) in eval mode; batch 1, no padding."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector.eval()

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        d = self.detector
        x = (image - d.pixel_mean) / d.pixel_std
        B, _, H, W = x.shape
        padding = torch.zeros(B, H, W, dtype=torch.bool, device=x.device)
        state = d.encode(ImageList(x, [(H, W)] * B), padding)
        out = d.decode(state, [QueryGroup(DETECTION, d.default_queries(state))])[0]
        scores, labels, boxes = d.detections(out)
        scale = torch.tensor([W, H, W, H], dtype=boxes.dtype, device=boxes.device)
        boxes = torch.minimum(torch.clamp(boxes[0] * scale, min=0.0), scale)  # clip to the image, as Boxes.clip
        return boxes, scores[0], labels[0]


def contract(detector: nn.Module, height: int, width: int, fmt: str, k: int) -> Dict:
    """The exported graph's input/output description (written as JSON beside it)."""
    return {
        "format": fmt,
        "input": {"name": "image", "dtype": "float32", "shape": [1, 3, height, width],
                  "channels": getattr(detector, "input_format", "RGB"), "range": "0-255, not normalised"},
        "outputs": {"boxes": "float32 [k, 4] xyxy pixels of the input", "scores": "float32 [k] sigmoid",
                    "labels": "int64 [k] contiguous class ids"},
        "k": k,
        "num_classes": int(detector.num_classes),
    }


def example_input(height: int, width: int, device: str = "cpu", seed: int = 0) -> Tensor:
    """A fixed ``[1, 3, H, W]`` image of pixel noise, for tracing (the graph does not depend on its values)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, height, width, generator=g) * 255).to(device)


def export_detector(detector: nn.Module, path: str, height: int, width: int, fmt: str, opset: int = 17) -> str:
    """Trace ``detector`` at ``height x width`` and write it as ``fmt`` to ``path`` (plus ``path.json``,
    the input contract). Returns ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; choose one of {sorted(FORMATS)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"the export size must be positive, got {height} x {width}")
    div = int(getattr(detector, "size_divisibility", 0) or 0)
    if div and (height % div or width % div):
        raise ValueError(f"the model pads its input to a multiple of {div} (size_divisibility); the graph has no "
                         f"padding mask, so export at a size divisible by {div} (got {height} x {width})")
    # the deployment form: RepVGG blocks (RT-DETR's) folded into one convolution each, on a copy (no-op otherwise)
    model = DeployableDetector(fuse_repvgg(copy.deepcopy(detector).eval()))
    device = next(detector.parameters()).device
    image = example_input(height, width, str(device))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the graph is traced for one size: the shape-to-int conversions are meant to become constants
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        k = len(model(image)[1])  # min(select_box_nums_for_evaluation, queries x classes)
        if fmt == "torchscript":
            traced = torch.jit.trace(model, (image,), check_trace=False)
            traced.save(path)
        else:
            torch.onnx.export(model, (image,), path, input_names=["image"], output_names=list(OUTPUT_NAMES),
                              opset_version=opset, dynamo=False)
    with open(path + ".json", "w") as f:
        json.dump(contract(detector, height, width, fmt, k), f, indent=1)
    return path


def unambiguous(scores: np.ndarray, gap: float = 2e-6) -> np.ndarray:
    """``[k]`` bool: the entries of a descending score list whose rank float rounding cannot change
    (at least ``gap`` from both neighbours); two runtimes may order near-ties either way."""
    diffs = np.abs(np.diff(scores))
    return (np.concatenate([[np.inf], diffs]) > gap) & (np.concatenate([diffs, [np.inf]]) > gap)


def parity(detector: nn.Module, path: str, image: Tensor) -> Dict[str, float]:
    """How far the exported graph at ``path`` is from PyTorch on ``image`` ``[1, 3, H, W]``: the
    largest score difference, and over the unambiguously ranked detections (their ``share``) the
    largest box difference in pixels and the share of equal labels."""
    with torch.no_grad():
        ref = [t.cpu().numpy() for t in DeployableDetector(detector)(image.to(next(detector.parameters()).device))]
    boxes, scores, labels = run_exported(path, image.cpu().numpy())
    ranked = unambiguous(ref[1])
    return {"score": float(np.abs(scores - ref[1]).max()), "share": float(ranked.mean()),
            "box_px": float(np.abs(boxes[ranked] - ref[0][ranked]).max()) if ranked.any() else 0.0,
            "labels_equal": float((labels[ranked] == ref[2][ranked]).mean()) if ranked.any() else 1.0}


def run_exported(path: str, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run an exported graph (``.onnx`` in onnxruntime on the CPU, else TorchScript) on ``image``
    ``float32 [1, 3, H, W]``; returns ``(boxes, scores, labels)`` as numpy arrays."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if path.endswith(".onnx"):
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        boxes, scores, labels = session.run(list(OUTPUT_NAMES), {"image": image})
        return boxes, scores, labels
    module = torch.jit.load(path, map_location="cpu")
    with torch.no_grad():
        boxes, scores, labels = module(torch.from_numpy(image))
    return boxes.numpy(), scores.numpy(), labels.numpy()
