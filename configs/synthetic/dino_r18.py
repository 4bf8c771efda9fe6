"""DINO R18 on the embedded synthetic shapes: configs/synthetic/dino_r50.py with an R18."""
from ..models.dino import synthetic_dino
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dino(depth=18)
train.output_dir = "./output/synthetic/dino_r18"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
