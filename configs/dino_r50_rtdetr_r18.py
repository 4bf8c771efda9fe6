"""KD-DETR: DINO R50 4-scale teacher -> RT-DETR R18 student, COCO 2017 at 640 x 640, the student's 120 epochs.

configs/dino_r50_r18.py (its teacher, teacher weights and points) with the RT-DETR R18 student and
configs/rtdetr_r18.py's data, schedule and ImageNet ResNet-18-vd. The teacher sees the student's 640 x 640 input,
not its own 800 x 1333 training scale. Shared points: 300 general points (as many as the student's queries) and
the teacher's 900 queries, decoded by both at the teacher's reference boxes; the two differ in levels (4 vs 3),
queries (900 vs 300) and decoder.
Loss: KD-DETR's default, kd_loss() in configs/common/kd_detr.py: the sigmoid class term per image (the same on
any number of devices); model.loss.class_term=softmax is the authors' loss, theirs exactly at 2 images per GPU.
"""
from .dino_r50_r18 import model
from .models.rtdetr import rtdetr
from .rtdetr_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model.student = rtdetr(depth=18)
model.points[0].num = 300
train.output_dir = "./output/dino_r50_rtdetr_r18"
