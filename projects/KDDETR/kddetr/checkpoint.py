"""Reading checkpoint files outside of a Checkpointer (teacher weights, student export)."""
from __future__ import annotations

import pickle
from typing import Dict

import numpy as np
import torch
from detectron2.utils.file_io import PathManager
from torch import Tensor


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """The model state dict of a Detectron2/detrex checkpoint (``{"model": ...}`` or bare),
    ``.pth`` or detectron2 ``.pkl``, local or a URL/``detectron2://`` path. Non-tensors dropped."""
    local = PathManager.get_local_path(path)
    if local.endswith(".pkl"):
        with open(local, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    else:
        data = torch.load(local, map_location="cpu", weights_only=False)
    state = data.get("model", data) if isinstance(data, dict) else data
    return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in state.items()
            if isinstance(v, (Tensor, np.ndarray))}
