"""KD-DETR + DETRDistill on the embedded synthetic shapes: DINO R50 teacher -> RT-DETR R18 student
(configs/synthetic/dino_r50_rtdetr_r18.py with DETRDistill's losses added, its feature term off as in
configs/synthetic/detrdistill_dino_r50_rtdetr_r18.py: four teacher levels against three)."""
from ..common.detrdistill import detrdistill
from .dino_r50_rtdetr_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.detrdistill = detrdistill(feature=False)
train.output_dir = "./output/synthetic/kd_detr_detrdistill_dino_r50_rtdetr_r18"
