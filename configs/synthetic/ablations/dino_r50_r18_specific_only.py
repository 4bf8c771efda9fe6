"""KD-DETR Table 5: specific points only (the teacher's queries, no random anchors)."""
from ...common.kd_detr import kd_points
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = kd_points(general=0, specific=True)
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_specific_only"
