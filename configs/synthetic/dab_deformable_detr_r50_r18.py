"""KD-DETR on the embedded synthetic shapes: DAB-Deformable DETR R50 teacher -> DAB-Deformable DETR R18 student.

Teacher: train configs/synthetic/dab_deformable_detr_r50.py first (studies/benchmark_kd.py --family dab_deformable_detr
    does), or point model.teacher_weights at your own.
Student: its pretrained R-18 (synthetic-backbone://R-18), the schedule of
    configs/synthetic/dab_deformable_detr_r18.py (equal iterations).
"""
from ..common.kd_detr import kd_detr
from ..models.deformable_detr import synthetic_dab_deformable_detr
from .dab_deformable_detr_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_dab_deformable_detr(depth=50),
    teacher_weights="output/synthetic/dab_deformable_detr_r50/model_final.pth",
    student=synthetic_dab_deformable_detr(depth=18),
    general=100,  # as many general points as detection queries
)
train.output_dir = "./output/synthetic/dab_deformable_detr_r50_r18"
