"""Deformable DETR R18, COCO 2017, 50 epochs (detrex deformable_detr_r50 settings; a KD-DETR student baseline).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/deformable_detr_r18.py
--input <detrex checkpoint> --output checkpoints/deformable_detr_r18.pth
"""
from .deformable_detr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.deformable_detr import deformable_detr

model = deformable_detr(depth=18)
train.output_dir = "./output/deformable_detr_r18"
train.init_checkpoint = "checkpoints/R-18.pkl"
