"""RT-DETR R50 (ResNet-vd) on the embedded synthetic shapes: configs/synthetic/dino_r50.py's data, optimizer,
schedule and length with RT-DETR's model, sized as the synthetic DINO (width 128, 100 queries, 3 decoder
layers); its backbone starts from the synthetic ResNet-50-vd pretraining (kddetr.data.backbones)."""
from ..models.rtdetr import synthetic_rtdetr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_rtdetr(depth=50)
train.output_dir = "./output/synthetic/rtdetr_r50"
train.init_checkpoint = "synthetic-backbone://R-50-vd"
