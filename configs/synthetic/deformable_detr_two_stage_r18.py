"""Two-stage Deformable DETR R18 on the embedded synthetic shapes: the student baseline of
configs/synthetic/deformable_detr_two_stage_r50_r18.py (same schedule, no teacher)."""
from ..models.deformable_detr import synthetic_deformable_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_deformable_detr(depth=18, with_box_refine=True, two_stage=True)
train.output_dir = "./output/synthetic/deformable_detr_two_stage_r18"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
