"""Datasets and the DETR mapper."""
from .datasets import check_has_annotations, register_user_coco
from .mapper import DetrDatasetMapper
from .synthetic import register_synthetic_datasets
from .targets import detr_targets, normalized_cxcywh

register_synthetic_datasets()

__all__ = ["DetrDatasetMapper", "check_has_annotations", "detr_targets", "normalized_cxcywh",
           "register_synthetic_datasets", "register_user_coco"]
