"""KD-DETR: DINO R101 teacher -> DINO R50 student, COCO 2017, 12 epochs.

Teacher: a DINO R101 checkpoint trained with configs/dino_r101.py, at checkpoints/dino_r101.pth.
Student: ImageNet R50 from detectron2's model zoo (torchvision weights; train.init_checkpoint of
    configs/dino_r50.py), loaded into the student.
Loss: KD-DETR's default, kd_loss() in configs/common/kd_detr.py: the sigmoid class term per image (the same on
any number of devices); model.loss.class_term=softmax is the authors' loss, theirs exactly at 2 images per GPU.
"""
from .common.kd_detr import kd_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = kd_detr(
    teacher=dino(depth=101),
    teacher_weights="checkpoints/dino_r101.pth",
    student=dino(depth=50),
    general=900,  # KD-DETR's DINO setting, as configs/dino_r50_r18.py
)

# Data, AdamW, the 12-epoch schedule and the student's ImageNet R50 are the student baseline's
# (configs/dino_r50.py); only the output moves.
train.output_dir = "./output/dino_r101_r50"
