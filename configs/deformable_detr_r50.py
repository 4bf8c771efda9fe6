"""Deformable DETR R50, COCO 2017, 50 epochs (detrex deformable_detr_r50 settings; a KD-DETR teacher).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/deformable_detr_r50.py
--input <detrex checkpoint> --output checkpoints/deformable_detr_r50.pth
"""
from .common.coco_detr import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.deformable_detr import deformable_detr

model = deformable_detr(depth=50)
train.output_dir = "./output/deformable_detr_r50"
