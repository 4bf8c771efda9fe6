"""RT-DETR R18 (ResNet-vd, fusion width x0.5) on the embedded synthetic shapes: configs/synthetic/rtdetr_r50.py
with an R18, the student baseline of the RT-DETR pairs."""
from ..models.rtdetr import synthetic_rtdetr
from .rtdetr_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_rtdetr(depth=18)
train.output_dir = "./output/synthetic/rtdetr_r18"
train.init_checkpoint = "synthetic-backbone://R-18-vd"
