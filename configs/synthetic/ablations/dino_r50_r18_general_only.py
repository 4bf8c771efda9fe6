"""KD-DETR Table 5: general points only (random anchors, no teacher queries)."""
from ...common.kd_detr import kd_points
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = kd_points(general=100, specific=False)
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_general_only"
