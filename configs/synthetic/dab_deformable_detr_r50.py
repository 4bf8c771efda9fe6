"""DAB-Deformable DETR R50 on the embedded synthetic shapes (4-D anchor queries); the schedule of
configs/synthetic/dino_r50.py, so every family is trained alike."""
from ..models.deformable_detr import synthetic_dab_deformable_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dab_deformable_detr(depth=50)
train.output_dir = "./output/synthetic/dab_deformable_detr_r50"
