"""KD-DETR: DAB-Deformable DETR R50 teacher -> DAB-Deformable DETR R18 student, COCO 2017, 50 epochs
(KD-DETR Table 2, student AP without -> with KD: 45.8 -> 47.2).

Teacher: checkpoints/dab_deformable_detr_r50.pth, trained with configs/dab_deformable_detr_r50.py or converted from detrex's
    published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R18 (checkpoints/R-18.pkl; train.init_checkpoint loads it into the student only).
Points: 300 general (4-D anchor boxes: general points are random anchors) + the teacher's 300 queries.
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from .common.data import coco_detr_data
from .common.optim import adamw
from .common.schedule import schedule_50ep
from .common.train import train_defaults, user_dataset_keys
from .common.kd_detr import kd_loss, kd_points
from .models.deformable_detr import dab_deformable_detr

model = L(KDDETR)(
    teacher=dab_deformable_detr(depth=50),
    teacher_weights="checkpoints/dab_deformable_detr_r50.pth",
    student=dab_deformable_detr(depth=18),
    points=kd_points(general=300, specific=True),
    loss=kd_loss(temperature=10.0, cls=1.0, l1=5.0, giou=2.0),
)

dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_50ep()  # 50 epochs, lr x0.1 at epoch 40
train = train_defaults(output_dir="./output/dab_deformable_detr_r50_r18", max_iter=375000)
train.init_checkpoint = "checkpoints/R-18.pkl"
user_dataset = user_dataset_keys()
