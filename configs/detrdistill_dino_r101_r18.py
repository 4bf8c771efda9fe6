"""DETRDistill: DINO R101 teacher -> DINO R18 student, 900 queries each, COCO 2017, 12 epochs
(DETRDistill supplementary Table 1: student 46.1 -> 47.9 AP, teacher 50.6).

Teacher: a DINO R101 checkpoint (configs/dino_r101.py, or detrex's via tools/convert_detrex.py) at
    checkpoints/dino_r101.pth.
Student: ImageNet R18 (train.init_checkpoint of configs/dino_r18.py), loaded into the student only.
Stage mapping: both decoders have 6 layers, student layer l <- teacher layer l.
"""
from .common.detrdistill import detrdistill_only
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .dino_r101_r50 import model
from .models.dino import dino

model.student = dino(depth=18)
model = detrdistill_only(model, instance=True, feature=True, query_contrast=True, assignment=True)

# Data, AdamW, the 12-epoch schedule and the student's ImageNet R18 are the student baseline's
# (configs/dino_r18.py); only the output moves.
train.output_dir = "./output/detrdistill_dino_r101_r18"
