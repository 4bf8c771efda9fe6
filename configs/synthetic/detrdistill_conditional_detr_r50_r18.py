"""DETRDistill (all four components) between the Conditional DETR R50 teacher and R18 student of
configs/synthetic/conditional_detr_r50_r18.py, at its schedule; one of DETRDistill's own families."""
from ..common.detrdistill import detrdistill_only
from .conditional_detr_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model)
train.output_dir = "./output/synthetic/detrdistill_conditional_detr_r50_r18"
