"""Datasets and the DETR mapper."""
from .backbones import register_handler
from .datasets import build_train_loader, register_user_coco
from .mapper import DetrDatasetMapper
from .synthetic import register_synthetic_datasets

register_synthetic_datasets()
register_handler()  # synthetic-backbone://R-<depth>: pretrained backbones for the synthetic configs

__all__ = ["DetrDatasetMapper", "build_train_loader", "register_synthetic_datasets", "register_user_coco"]
