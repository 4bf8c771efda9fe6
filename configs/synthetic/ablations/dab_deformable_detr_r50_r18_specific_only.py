"""DAB-Deformable DETR pair with specific points only (the teacher's own anchors, no random ones):
one of the diagnostic runs of docs/RESULTS.md "DAB-Deformable DETR"."""
from ...common.kd_detr import kd_points
from ..dab_deformable_detr_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = kd_points(general=0, specific=True)
train.output_dir = "./output/synthetic/ablations/dab_deformable_detr_r50_r18_specific_only"
