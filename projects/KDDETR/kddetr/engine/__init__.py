"""Training loop pieces."""
from .ema import EMAHook, ModelEMA
from .trainer import DistillTrainer, Trainer, unwrap

__all__ = ["EMAHook", "ModelEMA", "Trainer", "DistillTrainer", "unwrap"]
