"""KD-DETR: Deformable DETR R101 teacher -> Deformable DETR R50 student, COCO 2017, 50 epochs
(KD-DETR Table 2, student AP without -> with KD: 43.8 -> 46.1).

Teacher: checkpoints/deformable_detr_r101.pth, trained with configs/deformable_detr_r101.py or converted from detrex's
    published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R50 (detectron2://ImageNetPretrained/torchvision/R-50.pkl; train.init_checkpoint loads it into the student only).
Points: 300 general (learned query embeddings: general points are random N(0, 1) embeddings) + the teacher's 300 queries.
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from .common.data import coco_detr_data
from .common.optim import adamw
from .common.schedule import schedule_50ep
from .common.train import train_defaults, user_dataset_keys
from .common.kd_detr import kd_loss, kd_points
from .models.deformable_detr import deformable_detr

model = L(KDDETR)(
    teacher=deformable_detr(depth=101),
    teacher_weights="checkpoints/deformable_detr_r101.pth",
    student=deformable_detr(depth=50),
    points=kd_points(general=300, specific=True),
    loss=kd_loss(temperature=10.0, cls=1.0, l1=5.0, giou=2.0),
)

dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_50ep()  # 50 epochs, lr x0.1 at epoch 40
train = train_defaults(output_dir="./output/deformable_detr_r101_r50", max_iter=375000)
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
user_dataset = user_dataset_keys()
