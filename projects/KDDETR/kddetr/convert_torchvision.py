"""torchvision's ImageNet ResNet weights in Detectron2's ResNet names, the ``R-<depth>.pkl`` the COCO configs
start their backbones from (``train.init_checkpoint``).

torchvision                      Detectron2 (``ResNet`` with ``BasicStem``; ``stride_in_1x1=False``)
``conv1``, ``bn1``               ``stem.conv1``, ``stem.conv1.norm``
``layer<i>.<j>.conv<k>``         ``res<i+1>.<j>.conv<k>``
``layer<i>.<j>.bn<k>``           ``res<i+1>.<j>.conv<k>.norm``
``layer<i>.<j>.downsample.0/1``  ``res<i+1>.<j>.shortcut`` / ``res<i+1>.<j>.shortcut.norm``
``fc``                           dropped (the classifier), as are the batch-norm step counters

The file is Detectron2's model-zoo pickle (``{"model": numpy arrays, "__author__": "torchvision",
"matching_heuristics": True}``): ``DetectionCheckpointer`` matches its names to a model's by suffix, so the
same file initialises a bare backbone, a detector's ``backbone.*`` or a distiller's student.
"""
import pickle
import re
from typing import Dict, List, Tuple

import numpy as np
import torch

#: blocks per stage (``layer1``-``layer4``) -> ResNet depth, for basic and bottleneck blocks
BASIC_DEPTHS = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34}
BOTTLENECK_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}

_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")
_BN = {"weight", "bias", "running_mean", "running_var"}


def _rename_layer(part: str) -> str:
    """``conv2.weight`` -> ``conv2.weight``, ``bn2.bias`` -> ``conv2.norm.bias``, ``downsample.1.weight`` ->
    ``shortcut.norm.weight`` (inside one block)."""
    name, _, leaf = part.rpartition(".")
    if name.startswith("bn"):
        return f"conv{name[2:]}.norm.{leaf}"
    if name == "downsample.0":
        return f"shortcut.{leaf}"
    if name == "downsample.1":
        return f"shortcut.norm.{leaf}"
    return part


def torchvision_to_detectron2(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, np.ndarray], int, List[str]]:
    """``state``: a torchvision ``ResNet`` state dict -> (Detectron2 names -> float32 arrays, the ResNet depth,
    the torchvision keys left out). Raises ValueError for a state dict that is not a torchvision ResNet's."""
    if "conv1.weight" not in state or not any(k.startswith("layer4.") for k in state):
        raise ValueError("not a torchvision ResNet state dict (no conv1.weight / layer4.*): give the file "
                         "torchvision's resnet<depth>(weights=...) loads, e.g. resnet18-f37072fd.pth")
    out, dropped = {}, []
    for key, value in state.items():
        if not torch.is_tensor(value) or key.endswith("num_batches_tracked") or key.startswith("fc."):
            dropped.append(key)
            continue
        if key.startswith("conv1."):
            name = "stem." + key
        elif key.startswith("bn1."):
            name = "stem.conv1.norm." + key[len("bn1."):]
        else:
            block = _BLOCK.match(key)
            if block is None:
                dropped.append(key)
                continue
            stage, index, rest = block.groups()
            name = f"res{int(stage) + 1}.{index}.{_rename_layer(rest)}"
        out[name] = value.detach().float().cpu().numpy()
    blocks = tuple(1 + max(int(_BLOCK.match(k).group(2)) for k in state if k.startswith(f"layer{i}."))
                   for i in range(1, 5))
    bottleneck = any(k.endswith("conv3.weight") for k in state)
    depth = (BOTTLENECK_DEPTHS if bottleneck else BASIC_DEPTHS).get(blocks)
    if depth is None:
        raise ValueError(f"a ResNet with {blocks} blocks per stage is none of depths 18/34/50/101/152")
    return out, depth, dropped


def write_detectron2_pickle(weights: Dict[str, np.ndarray], path: str) -> None:
    """Detectron2's model-zoo pickle, read by ``DetectionCheckpointer`` with name matching by suffix."""
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": "torchvision", "matching_heuristics": True}, f)
