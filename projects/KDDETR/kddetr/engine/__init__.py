"""Training loop pieces."""
from .ema import EMAHook, ModelEMA
from .predictor import KDDETRStudent, add_kddetr_config, export_student
from .trainer import DistillTrainer, Trainer, unwrap

__all__ = ["EMAHook", "ModelEMA", "Trainer", "DistillTrainer", "KDDETRStudent", "add_kddetr_config", "export_student",
           "unwrap"]
