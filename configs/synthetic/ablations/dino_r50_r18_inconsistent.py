"""KD-DETR Table 1 baseline "inconsistent": logit distillation on each model's own queries."""
from ...common.kd_detr import INCONSISTENT
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = INCONSISTENT
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_inconsistent"
