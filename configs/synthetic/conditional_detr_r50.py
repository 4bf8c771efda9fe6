"""Conditional DETR R50 on the embedded synthetic shapes (single scale (res3 here, normalised projection), learned query
embeddings, general points are random embeddings); the schedule of configs/synthetic/dino_r50.py,
so every family is trained alike."""
from ..models.dab_detr import synthetic_conditional_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_conditional_detr(depth=50)
train.output_dir = "./output/synthetic/conditional_detr_r50"
