"""DINO R18 on the one-class synthetic shapes: configs/synthetic/one_class/dino_r50.py with an R18."""
from ...models.dino import synthetic_dino
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dino(depth=18, num_classes=1)
train.output_dir = "./output/synthetic/one_class/dino_r18"
train.init_checkpoint = "synthetic-backbone://R-18"
