"""Training loop pieces."""
from .ema import EMAHook, ModelEMA
from .trainer import Trainer

__all__ = ["EMAHook", "ModelEMA", "Trainer"]
