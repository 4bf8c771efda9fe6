"""Two-stage Deformable DETR R50 with box refinement on the embedded synthetic shapes (its queries
are boxes proposed by the encoder, so shared points are boxes, as for DINO); the schedule of
configs/synthetic/dino_r50.py, so every family is trained alike."""
from ..models.deformable_detr import synthetic_deformable_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_deformable_detr(depth=50, with_box_refine=True, two_stage=True)
train.output_dir = "./output/synthetic/deformable_detr_two_stage_r50"
