"""KD-DETR: knowledge distillation for DETR detectors, as a Detectron2 project."""
from . import data, modeling  # noqa: F401  (registers the synthetic datasets)

__version__ = "0.1.0"
