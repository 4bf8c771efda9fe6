"""KD-DETR on the embedded synthetic shapes: two-stage Deformable DETR R50 teacher -> two-stage
Deformable DETR R18 student (both with box refinement; KD-DETR Table 2's "Deformable DETR" row).

Teacher: train configs/synthetic/deformable_detr_two_stage_r50.py first (studies/benchmark_kd.py --family
    deformable_detr_two_stage does), or point model.teacher_weights at your own.
Student: its pretrained R-18 (synthetic-backbone://R-18), the schedule of
    configs/synthetic/deformable_detr_two_stage_r18.py (equal iterations).
"""
from ..common.kd_detr import kd_detr
from ..models.deformable_detr import synthetic_deformable_detr
from .deformable_detr_two_stage_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_deformable_detr(depth=50, with_box_refine=True, two_stage=True),
    teacher_weights="output/synthetic/deformable_detr_two_stage_r50/model_final.pth",
    student=synthetic_deformable_detr(depth=18, with_box_refine=True, two_stage=True),
    general=100,  # as many general points as detection queries
)
train.output_dir = "./output/synthetic/deformable_detr_two_stage_r50_r18"
