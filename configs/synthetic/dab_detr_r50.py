"""DAB-DETR R50 on the embedded synthetic shapes (single scale (res4 here), 4-D anchor queries); the schedule of
configs/synthetic/dino_r50.py, so every family is trained alike."""
from ..models.dab_detr import synthetic_dab_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dab_detr(depth=50)
train.output_dir = "./output/synthetic/dab_detr_r50"
