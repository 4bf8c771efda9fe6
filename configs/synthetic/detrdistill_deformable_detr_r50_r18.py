"""DETRDistill on the embedded synthetic shapes: Deformable DETR R50 -> R18 (DETRDistill's main family),
the pair of configs/synthetic/deformable_detr_r50_r18.py (studies/benchmark_kd.py --family deformable_detr
--detrdistill). Switch a component off with e.g. model.detrdistill.feature=null."""
from ..common.detrdistill import detrdistill_only
from .deformable_detr_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model)
train.output_dir = "./output/synthetic/detrdistill_deformable_detr_r50_r18"
