"""KD-DETR: knowledge distillation for DETR detectors, as a Detectron2 project."""
from . import data, distill, engine, export, modeling  # noqa: F401  (registers datasets and meta-architectures)

__version__ = "0.1.0"
