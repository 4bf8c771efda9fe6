"""Exponential moving average of a model's weights (detrex's ``train.model_ema``)."""
from __future__ import annotations

import contextlib
import copy
from typing import Dict

import torch
from detectron2.engine import HookBase
from torch import Tensor, nn

from .trainer import unwrap


class ModelEMA:
    """Keeps ``ema = decay * ema + (1 - decay) * weights`` for floating-point parameters and
    buffers; integer buffers are copied. Checkpointable (``state_dict``/``load_state_dict``).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, device: str = ""):
        self.decay = decay
        self.device = device or None
        self.state: Dict[str, Tensor] = {
            k: v.detach().clone().to(self.device or v.device) for k, v in unwrap(model).state_dict().items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in unwrap(model).state_dict().items():
            ema = self.state[k]
            if v.dtype.is_floating_point:
                ema.mul_(self.decay).add_(v.detach().to(ema.device), alpha=1.0 - self.decay)
            else:
                ema.copy_(v)

    @contextlib.contextmanager
    def swapped_into(self, model: nn.Module):
        """Temporarily load the EMA weights into ``model`` (for evaluation)."""
        model = unwrap(model)
        backup = copy.deepcopy(model.state_dict())
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> Dict[str, Tensor]:
        return self.state

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        for k, v in state.items():
            if k in self.state:
                self.state[k].copy_(v)


class EMAHook(HookBase):
    """Updates the EMA after every optimizer step."""

    def __init__(self, ema: ModelEMA, model: nn.Module):
        self.ema, self.model = ema, model

    def after_step(self) -> None:
        self.ema.update(self.model)
