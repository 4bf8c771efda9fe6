"""Conditional DETR R50, COCO 2017, 50 epochs (detrex conditional_detr_r50 settings; a KD-DETR student baseline).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/conditional_detr_r50.py
--input <detrex checkpoint> --output checkpoints/conditional_detr_r50.pth
"""
from .common.coco_detr import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dab_detr import conditional_detr

model = conditional_detr(depth=50)
train.output_dir = "./output/conditional_detr_r50"
