"""KD-DETR: DAB-DETR R101 teacher -> DAB-DETR R50 student, COCO 2017, 50 epochs
(KD-DETR Table 2, student AP without -> with KD: 42.1 -> 45.7).

Teacher: checkpoints/dab_detr_r101.pth, trained with configs/dab_detr_r101.py or converted from
    detrex's published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R50 (detectron2://ImageNetPretrained/torchvision/R-50.pkl: train.init_checkpoint of
    configs/dab_detr_r50.py, loaded into the student only).
Points: 300 general (4-D anchor boxes: general points are random anchors) + the teacher's 300 queries.
Loss: KD-DETR's default, kd_loss() in configs/common/kd_detr.py: the sigmoid class term per image (the same on
any number of devices); model.loss.class_term=softmax is the authors' loss, theirs exactly at 2 images per GPU.
"""
from .common.kd_detr import kd_detr
from .dab_detr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dab_detr import dab_detr

model = kd_detr(
    teacher=dab_detr(depth=101),
    teacher_weights="checkpoints/dab_detr_r101.pth",
    student=dab_detr(depth=50),
    general=300,
)

# Data, AdamW, the 50-epoch schedule and the student's ImageNet weights are the student baseline's
# (configs/dab_detr_r50.py), so the pair and the baseline train alike; only the output moves.
train.output_dir = "./output/dab_detr_r101_r50"
