"""DAB-Deformable DETR R18, COCO 2017, 50 epochs (detrex dab_deformable_detr_r50 settings; a KD-DETR student baseline).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/dab_deformable_detr_r18.py
--input <detrex checkpoint> --output checkpoints/dab_deformable_detr_r18.pth
"""
from .dab_deformable_detr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.deformable_detr import dab_deformable_detr

model = dab_deformable_detr(depth=18)
train.output_dir = "./output/dab_deformable_detr_r18"
train.init_checkpoint = "checkpoints/R-18.pkl"
