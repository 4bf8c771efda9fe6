"""KD-DETR + DETRDistill together: DINO R50 teacher -> DINO R18 student, COCO 2017, 12 epochs.

configs/dino_r50_r18.py (900 general points + the teacher's queries, KL/L1/GIoU on the shared points) with
DETRDistill's losses added (configs/common/detrdistill.py). The student decodes its detection, denoising,
KD-DETR point and teacher-query groups in one masked decoder pass.
"""
from .common.detrdistill import detrdistill
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.detrdistill = detrdistill()
train.output_dir = "./output/kd_detr_detrdistill_dino_r50_r18"
