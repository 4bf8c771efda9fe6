"""DETRDistill: DINO R101 teacher -> DINO R18 student, 900 queries each, COCO 2017, 12 epochs
(DETRDistill supplementary Table 1: student 46.1 -> 47.9 AP, teacher 50.6).

Teacher: a DINO R101 checkpoint (configs/dino_r101.py, or detrex's via tools/convert_detrex.py) at
    checkpoints/dino_r101.pth.
Student: ImageNet R18 (detectron2's torchvision weights), loaded into the student only.
Stage mapping: both decoders have 6 layers, student layer l <- teacher layer l.
"""
from .common.detrdistill import detrdistill
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model.teacher = dino(depth=101)
model.teacher_weights = "checkpoints/dino_r101.pth"
model.student = dino(depth=18)
model.points = []  # DETRDistill alone
model.loss = None
model.detrdistill = detrdistill()
train.output_dir = "./output/detrdistill_dino_r101_r18"
