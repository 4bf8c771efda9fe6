"""DAB-Deformable DETR R50, COCO 2017, 50 epochs (detrex dab_deformable_detr_r50 settings; a KD-DETR teacher).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/dab_deformable_detr_r50.py
--input <detrex checkpoint> --output checkpoints/dab_deformable_detr_r50.pth
"""
from .common.coco_detr import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.deformable_detr import dab_deformable_detr

model = dab_deformable_detr(depth=50)
train.output_dir = "./output/dab_deformable_detr_r50"
