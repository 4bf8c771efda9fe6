"""Reading checkpoint files outside of a Checkpointer (teacher weights, student export)."""
from __future__ import annotations

import pickle
from typing import Dict, Optional

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


def student_state_dict(path: str, state: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
    """The ``student.*`` tensors of a distillation checkpoint, without the prefix (``state``: the
    file's state dict if the caller already read it)."""
    state = read_state_dict(path) if state is None else state
    student = {k[len("student."):]: v for k, v in state.items() if k.startswith("student.")}
    if not student:
        raise ValueError(f"'{path}' holds no 'student.*' weights: it is not a distillation checkpoint written by "
                         "train_net.py with a KDDETR config.")
    return student
