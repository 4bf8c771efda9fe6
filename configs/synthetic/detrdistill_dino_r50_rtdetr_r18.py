"""DETRDistill on the embedded synthetic shapes: DINO R50 teacher -> RT-DETR R18 student, the teacher and
schedule of configs/synthetic/dino_r50_rtdetr_r18.py. Without its feature term: the teacher's memory has four
levels and the student's three, so there is no level-by-level pairing of the two (instance, query-contrast
and teacher-assisted assignment terms pair predictions and queries, which both have)."""
from ..common.detrdistill import detrdistill_only
from .dino_r50_rtdetr_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model = detrdistill_only(model, feature=False)
train.output_dir = "./output/synthetic/detrdistill_dino_r50_rtdetr_r18"
