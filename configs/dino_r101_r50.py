"""KD-DETR: DINO R101 teacher -> DINO R50 student, COCO 2017, 12 epochs.

Teacher: a DINO R101 checkpoint trained with configs/dino_r101.py, at checkpoints/dino_r101.pth.
Student: ImageNet R50 from detectron2's model zoo (torchvision weights; train.init_checkpoint of
    configs/dino_r50.py), loaded into the student.
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from .common.kd_detr import kd_loss, kd_points
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = L(KDDETR)(
    teacher=dino(depth=101),
    teacher_weights="checkpoints/dino_r101.pth",
    teacher_check=dict(images=50, min_ap=1.0),  # the teacher's AP on 50 test images, checked before training
    student=dino(depth=50),
    points=kd_points(general=900, specific=True),  # KD-DETR's DINO setting, as configs/dino_r50_r18.py
    # the class term per image, x 2: the authors' sum over a process's images at their 2 per GPU, on any layout
    loss=kd_loss(temperature=10.0, cls=2.0, l1=5.0, giou=2.0),
)

# Data, AdamW, the 12-epoch schedule and the student's ImageNet R50 are the student baseline's
# (configs/dino_r50.py); only the output moves.
train.output_dir = "./output/dino_r101_r50"
