"""KD-DETR on the embedded synthetic shapes: DINO R50 teacher -> DINO R18 student (CPU sized).

Teacher: configs/synthetic/dino_r50.py, trained first (1000 iterations at batch 8, 54-57 AP, 30-40 min
    on 2 CPU cores; studies/benchmark_kd.py trains it when it is missing), or model.teacher_weights=<yours>.
Student: its synthetic pretrained R-18 (synthetic-backbone://R-18, the ImageNet analogue), the
    schedule of configs/synthetic/dino_r18.py, so the two compare at equal iterations (studies/benchmark_kd.py).
"""
from ..common.kd_detr import kd_detr
from ..models.dino import synthetic_dino
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_dino(depth=50),
    teacher_weights="output/synthetic/dino_r50/model_final.pth",
    student=synthetic_dino(depth=18),
    general=100,  # as many general points as detection queries
)
train.output_dir = "./output/synthetic/dino_r50_r18"
