"""DETRDistill: Deformable DETR R101 teacher -> Deformable DETR R50 student, COCO 2017, 50 epochs
(DETRDistill's main setting; the authors' code: AdamW 2e-4, gradient clipping 0.1, 16 images
per batch, lr x0.1 at epoch 40).

Teacher: checkpoints/deformable_detr_r101.pth, trained with configs/deformable_detr_r101.py or converted from
    detrex's published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R50, loaded into the student only by train.init_checkpoint.
Losses: the student's detection losses (focal 2, L1 5, GIoU 2) + progressive instance distillation (1, 5, 2,
    student layer l <- teacher layer l) + feature distillation on the 4 neck levels with the contrastive query
    loss (0.2) + teacher-assisted assignment (the teacher's 300 queries, the student's detection weights).
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from .common.data import coco_detr_data
from .common.detrdistill import detrdistill
from .common.optim import adamw
from .common.schedule import schedule_50ep
from .common.train import train_defaults, user_dataset_keys
from .models.deformable_detr import deformable_detr

model = L(KDDETR)(
    teacher=deformable_detr(depth=101),
    teacher_weights="checkpoints/deformable_detr_r101.pth",
    student=deformable_detr(depth=50),
    points=[],  # no KD-DETR points: DETRDistill alone
    loss=None,
    detrdistill=detrdistill(instance=True, feature=True, query_contrast=True, assignment=True),
)

dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=2e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_50ep()  # 50 epochs, lr x0.1 at epoch 40
train = train_defaults(output_dir="./output/detrdistill_deformable_detr_r101_r50", max_iter=375000)  # clip_grad max_norm 0.1 by default
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
user_dataset = user_dataset_keys()
