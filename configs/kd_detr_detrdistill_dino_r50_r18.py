"""KD-DETR + DETRDistill together: DINO R50 teacher -> DINO R18 student, COCO 2017, 12 epochs.

configs/dino_r50_r18.py (900 general points + the teacher's queries, KL/L1/GIoU on the shared points) with
DETRDistill's losses added (configs/common/detrdistill.py). The student decodes its detection, denoising,
KD-DETR point and teacher-query groups in one masked decoder pass.
"""
from .common.detrdistill import detrdistill
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .dino_r50_r18 import model

model.detrdistill = detrdistill(instance=True, feature=True, query_contrast=True, assignment=True)

# Data, AdamW, the 12-epoch schedule and the student's ImageNet R18 are the student baseline's
# (configs/dino_r18.py); only the output moves.
train.output_dir = "./output/kd_detr_detrdistill_dino_r50_r18"
