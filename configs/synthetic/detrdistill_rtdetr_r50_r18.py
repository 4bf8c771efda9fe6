"""DETRDistill on the embedded synthetic shapes: RT-DETR R50 teacher -> RT-DETR R18 student, the teacher and
schedule of configs/synthetic/rtdetr_r50_r18.py (every component: both read three levels)."""
from ..common.detrdistill import detrdistill_only
from .rtdetr_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model)
train.output_dir = "./output/synthetic/detrdistill_rtdetr_r50_r18"
