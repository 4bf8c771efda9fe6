"""KD-DETR: DINO R101 teacher -> DINO R50 student, COCO 2017, 12 epochs.

Teacher: a DINO R101 checkpoint trained with configs/dino_r101.py, at checkpoints/dino_r101.pth.
Student: ImageNet R50 from detectron2's model zoo (torchvision weights), loaded into the student.
"""
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model.teacher = dino(depth=101)
model.teacher_weights = "checkpoints/dino_r101.pth"
model.student = dino(depth=50)
train.output_dir = "./output/dino_r101_r50"
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
