"""DETRDistill on the embedded synthetic shapes: DINO R50 teacher -> DINO R18 student (CPU sized).

The teacher and schedule of configs/synthetic/dino_r50_r18.py (KD-DETR), so studies/benchmark_kd.py --detrdistill
compares the two distillers at equal iterations. Switch a component off with e.g. model.detrdistill.feature=null.
"""
from ..common.detrdistill import detrdistill_only
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model)
train.output_dir = "./output/synthetic/detrdistill_dino_r50_r18"
