"""KD-DETR on the embedded synthetic shapes: DAB-Deformable DETR R50 teacher -> DAB-Deformable DETR R18 student.

Teacher: train configs/synthetic/dab_deformable_detr_r50.py first (studies/benchmark_kd.py --family dab_deformable_detr
    does), or point model.teacher_weights at your own.
Student: its pretrained R-18 (synthetic-backbone://R-18), the schedule of
    configs/synthetic/dab_deformable_detr_r18.py (equal iterations).
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from ..common.kd_detr import kd_loss, kd_points
from ..models.deformable_detr import synthetic_dab_deformable_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = L(KDDETR)(
    teacher=synthetic_dab_deformable_detr(depth=50),
    teacher_weights="output/synthetic/dab_deformable_detr_r50/model_final.pth",
    teacher_check=dict(images=50, min_ap=1.0),  # the teacher's AP on 50 test images, checked before training
    student=synthetic_dab_deformable_detr(depth=18),
    points=kd_points(general=100, specific=True),  # as many general points as detection queries
    # the class term per image, x 2: the authors' sum over a process's images at their 2 per GPU, on any layout
    loss=kd_loss(temperature=10.0, cls=2.0, l1=5.0, giou=2.0),
)
train.output_dir = "./output/synthetic/dab_deformable_detr_r50_r18"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
