"""DINO R50, 4 scales, COCO 2017, 12 epochs (detrex dino_r50_4scale_12ep)."""
from .common.coco_detr import dataloader, optimizer, train, user_dataset  # noqa: F401
from .common.schedule import schedule_12ep
from .models.dino import dino

model = dino(depth=50)
lr_multiplier = schedule_12ep()
train.update(output_dir="./output/dino_r50_12ep", max_iter=90000)
