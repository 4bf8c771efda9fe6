"""DETRDistill: Deformable DETR R101 teacher -> Deformable DETR R50 student, COCO 2017, 50 epochs
(DETRDistill's main setting; the authors' code: AdamW 2e-4, gradient clipping 0.1, 16 images
per batch, lr x0.1 at epoch 40).

Teacher: checkpoints/deformable_detr_r101.pth, trained with configs/deformable_detr_r101.py or converted from
    detrex's published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R50 (train.init_checkpoint of configs/deformable_detr_r50.py), loaded into the student only.
Losses: the student's detection losses (focal 2, L1 5, GIoU 2) + progressive instance distillation (1, 5, 2,
    student layer l <- teacher layer l) + feature distillation on the 4 neck levels with the contrastive query
    loss (0.2) + teacher-assisted assignment (the teacher's 300 queries, the student's detection weights).
"""
from .common.detrdistill import detrdistill_only
from .deformable_detr_r101_r50 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model, instance=True, feature=True, query_contrast=True, assignment=True)

# Data, the 50-epoch schedule, gradient clipping (max_norm 0.1) and the student's ImageNet R50 are the
# student baseline's (configs/deformable_detr_r50.py); DETRDistill's recipe only doubles the learning rate.
optimizer.lr = 2e-4
train.output_dir = "./output/detrdistill_deformable_detr_r101_r50"
