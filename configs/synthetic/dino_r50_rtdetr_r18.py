"""KD-DETR on the embedded synthetic shapes: the synthetic DINO R50 teacher -> RT-DETR R18 student.

configs/synthetic/dino_r50_r18.py (its teacher, teacher weights and points) with the RT-DETR R18 student and
configs/synthetic/rtdetr_r18.py's schedule and backbone, so the student compares with itself alone at equal
iterations. The teacher reads 4 levels and decodes 100 queries, the student 3 levels and its own 100 selected
proposals: what they share are the distillation points, decoded by both at the teacher's reference boxes.
"""
from ..models.rtdetr import synthetic_rtdetr
from .dino_r50_r18 import model
from .rtdetr_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model.student = synthetic_rtdetr(depth=18)
train.output_dir = "./output/synthetic/dino_r50_rtdetr_r18"
