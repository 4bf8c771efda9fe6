"""DAB-DETR R34, COCO 2017, 50 epochs (detrex dab_detr_r50 settings; a KD-DETR student baseline).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/dab_detr_r34.py
--input <detrex checkpoint> --output checkpoints/dab_detr_r34.pth
"""
from .dab_detr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dab_detr import dab_detr

model = dab_detr(depth=34)
train.output_dir = "./output/dab_detr_r34"
train.init_checkpoint = "checkpoints/R-34.pkl"
