"""KD-DETR + DETRDistill on the embedded synthetic shapes: DINO R50 teacher -> DINO R18 student.

configs/synthetic/dino_r50_r18.py (KD-DETR) with DETRDistill's losses added.
"""
from ..common.detrdistill import detrdistill
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.detrdistill = detrdistill()
train.output_dir = "./output/synthetic/kd_detr_detrdistill_dino_r50_r18"
