"""Deformable DETR R101, COCO 2017, 50 epochs (detrex deformable_detr_r101 settings; a KD-DETR teacher).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/deformable_detr_r101.py
--input <detrex checkpoint> --output checkpoints/deformable_detr_r101.pth
"""
from .deformable_detr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.deformable_detr import deformable_detr

model = deformable_detr(depth=101)
train.output_dir = "./output/deformable_detr_r101"
# ImageNet R101: tools/convert_torchvision.py --depth 101 (Detectron2 hosts only R-50 in this form)
train.init_checkpoint = "checkpoints/R-101.pkl"
