"""KD-DETR on the embedded synthetic shapes: DINO R50 teacher -> DINO R18 student (CPU sized).

Teacher: configs/synthetic/dino_r50.py, trained first (1000 iterations at batch 8, 54-57 AP, 30-40 min
    on 2 CPU cores; studies/benchmark_kd.py trains it when it is missing), or model.teacher_weights=<yours>.
Student: its synthetic pretrained R-18 (synthetic-backbone://R-18, the ImageNet analogue), the
    schedule of configs/synthetic/dino_r18.py, so the two compare at equal iterations (studies/benchmark_kd.py).
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from ..common.kd_detr import kd_loss, kd_points
from ..models.dino import synthetic_dino
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = L(KDDETR)(
    teacher=synthetic_dino(depth=50),
    teacher_weights="output/synthetic/dino_r50/model_final.pth",
    teacher_check=dict(images=50, min_ap=1.0),  # the teacher's AP on 50 test images, checked before training
    student=synthetic_dino(depth=18),
    points=kd_points(general=100, specific=True),  # as many general points as detection queries
    # the class term per image, x 2: the authors' sum over a process's images at their 2 per GPU, on any layout
    loss=kd_loss(temperature=10.0, cls=2.0, l1=5.0, giou=2.0),
)
train.output_dir = "./output/synthetic/dino_r50_r18"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
