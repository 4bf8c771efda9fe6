"""KD-DETR Table 1 baseline "similar general": logit distillation on each model's own queries."""
from ...common.kd_detr import SIMILAR_GENERAL
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = SIMILAR_GENERAL
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_similar_general"
