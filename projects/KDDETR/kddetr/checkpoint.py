"""Reading checkpoint files outside of a Checkpointer (teacher weights, evaluation, student
export), strict comparison of a state dict with a model, and a checkpointer that never writes
non-finite weights."""
from __future__ import annotations

import os
import pickle
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathManager
from torch import Tensor, nn

from .errors import NonFiniteError, Refusal

# BatchNorm's step counter; a FrozenBatchNorm2d built as such (norm="FrozenBN": the COCO configs',
# detrex's backbones) has none, so its checkpoint would not load into the same model with norm="BN".
BN_COUNTER = "num_batches_tracked"


class CheckpointError(Refusal, ValueError):
    """A checkpoint file that cannot be read, or that does not match the model it is loaded into
    (the message names the file, the config key it came from and the fix)."""


def read_state_dict(path: str, key: str = "") -> Dict[str, Tensor]:
    """The model state dict of a Detectron2/detrex checkpoint (``{"model": ...}`` or bare),
    ``.pth`` or detectron2 ``.pkl``, local or a URL/``detectron2://`` path. Non-tensors dropped.

    ``key``: the config key the path came from (e.g. ``model.teacher_weights``), named in the
    error a truncated or corrupt file gets."""
    local = PathManager.get_local_path(path)
    try:
        if local.endswith(".pkl"):
            with open(local, "rb") as f:
                data = pickle.load(f, encoding="latin1")
        else:
            data = torch.load(local, map_location="cpu", weights_only=False)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError) as e:
        source = f" ({key})" if key else ""
        raise CheckpointError(f"Checkpoint '{path}'{source} cannot be read: {type(e).__name__}: {e}. The file is "
                              "truncated or corrupt (e.g. a copy or a save that was interrupted); point the key at "
                              "another checkpoint, such as an earlier model_XXXXXXX.pth of the same run.") from e
    state = data.get("model", data) if isinstance(data, dict) else data
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint '{path}'{f' ({key})' if key else ''} holds a {type(state).__name__}, not a "
                              "state dict (a dict of tensors, or {'model': dict}).")
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


def model_state_dict(path: str, key: str = "") -> Dict[str, Tensor]:
    """The state dict of one model from ``path``: its student's (without the prefix) when ``path`` is
    a distillation checkpoint (``student.*`` keys), else the file's own (``key``: as
    :func:`read_state_dict`)."""
    state = read_state_dict(path, key)
    return student_state_dict(path, state) if any(k.startswith("student.") for k in state) else state


def state_dict_problems(expected: Dict[str, Tensor], state: Dict[str, Tensor]) -> List[str]:
    """How ``state`` fails to load into a model whose state dict is ``expected``, strictly: missing
    parameters/buffers and shape mismatches, as short phrases with counts and the first offending
    keys ([] = it loads). A missing BatchNorm step counter (``num_batches_tracked``, which a
    FrozenBatchNorm2d built as such lacks; detectron2 drops it from pycls checkpoints too) is
    not a problem: it only steers BN with ``momentum=None``, and ``load_strict`` keeps the
    model's own."""
    missing = [k for k in expected if k not in state and k.rsplit(".", 1)[-1] != BN_COUNTER]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        first = ', '.join(missing[:3])
        problems.append(f"lacks {len(missing)} of the model's {len(expected)} tensors (first: {first})")
    if wrong:
        problems.append(f"has {len(wrong)} with other shapes (checkpoint vs model; first: {', '.join(wrong[:3])})")
    return problems


def load_strict(model: nn.Module, path: str, state: Optional[Dict[str, Tensor]] = None, key: str = "",
                fix: str = "") -> int:
    """Load every tensor of ``model`` from ``path`` (or from ``state``, its already-read state dict);
    refuse with a message naming the file, the counts and the first offending keys when a parameter
    is missing or has another shape (a missing BN ``num_batches_tracked`` keeps the model's). Extra
    keys in the file are ignored; returns their number."""
    state = read_state_dict(path, key) if state is None else state
    expected = model.state_dict()
    problems = state_dict_problems(expected, state)
    if problems:
        source = f" ({key})" if key else ""
        raise CheckpointError(f"Checkpoint '{path}'{source} does not match the {type(model).__name__} of the config: "
                              f"it {' and '.join(problems)}. "
                              f"{fix or 'Use the config the checkpoint was trained with.'}")
    model.load_state_dict({k: state.get(k, v) for k, v in expected.items()}, strict=True)
    return len([k for k in state if k not in expected])


def non_finite_tensors(state: Dict[str, Tensor]) -> List[str]:
    """Names of the floating-point tensors of ``state`` that hold a NaN or an infinity."""
    return [k for k, v in state.items() if isinstance(v, Tensor) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]


class FiniteCheckpointer(DetectionCheckpointer):
    """Detectron2's checkpointer that refuses to write a model with non-finite weights, so that
    ``last_checkpoint`` always names weights a run can resume from."""

    def save(self, name: str, **kwargs) -> None:
        bad = non_finite_tensors(self.model.state_dict())
        if bad:
            raise NonFiniteError(
                f"Not writing checkpoint '{name}': {len(bad)} model tensors are non-finite (first: "
                f"{', '.join(bad[:3])}). The last good checkpoint is "
                f"{self.get_checkpoint_file() if self.has_checkpoint() else 'none (nothing was written yet)'}.")
        super().save(name, **kwargs)


def converter_model(config_file: str, opts: List[str], input_path: str, source: str, example: str) -> nn.Module:
    """The model a checkpoint converter fills (tools/convert_detrex.py, tools/convert_rtdetr.py): the single
    model of ``config_file`` with ``opts`` (a teacher/student pair is refused, naming ``example``), once the
    ``source`` checkpoint ``input_path`` is known to exist."""
    from detectron2.config import instantiate

    from .config import load_config
    from .errors import ConfigError, MissingInputError

    cfg = load_config(config_file, opts)
    if "student" in cfg.model:
        raise ConfigError(f"{config_file} is a teacher/student pair: give the single-model config of the "
                          f"architecture (e.g. {example})")
    if not os.path.isfile(input_path):
        raise MissingInputError(f"--input {input_path} does not exist: give a {source} checkpoint file")
    return instantiate(cfg.model)


def write_converted(state: Dict[str, Tensor], unmatched: List[str], problems: List[str], total: int, output: str,
                    input_path: str, source: str, allow_missing: bool, what: str) -> int:
    """Print what a conversion from ``source`` took (of ``total`` tensors of ``what``), every key of theirs
    nothing took and every tensor of ours not found; write ``{"model": state}`` to ``output`` unless something
    is missing (and not ``allow_missing``). Returns the tool's exit status."""
    print(f"converted {len(state)} of {total} tensors of {what}")
    for key in unmatched:
        print(f"  unmatched {source} key: {key}")
    for p in problems:
        print(f"  missing: {p}")
    if problems and not allow_missing:
        print(f"{len(problems)} tensors not converted; nothing written (--allow-missing writes anyway)")
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    torch.save({"model": state, "converted_from": os.path.abspath(input_path)}, output)
    print(f"wrote {output}")
    return 0
