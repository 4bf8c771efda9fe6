"""KD-DETR: DAB-DETR R50 teacher -> DAB-DETR R34 student, COCO 2017, 50 epochs
(KD-DETR Table 2, student AP without -> with KD: 40.6 -> 44.1).

Teacher: checkpoints/dab_detr_r50.pth, trained with configs/dab_detr_r50.py or converted from
    detrex's published checkpoint with tools/convert_detrex.py (see README).
Student: ImageNet R34 (checkpoints/R-34.pkl: train.init_checkpoint of
    configs/dab_detr_r34.py, loaded into the student only).
Points: 300 general (4-D anchor boxes: general points are random anchors) + the teacher's 300 queries.
"""
from .dab_detr_r34 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .dab_detr_r50_r18 import model
from .models.dab_detr import dab_detr

model.student = dab_detr(depth=34)
# Data, AdamW, the 50-epoch schedule and the student's ImageNet weights are the student baseline's
# (configs/dab_detr_r34.py), so the pair and the baseline train alike; only the output moves.
train.output_dir = "./output/dab_detr_r50_r34"
