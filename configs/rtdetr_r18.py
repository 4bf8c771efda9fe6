"""RT-DETR R18 (RT-DETRv2-S: ResNet-18-vd, 3 decoder layers, fusion width x0.5, BatchNorm trained), COCO 2017
at 640 x 640, 120 epochs: configs/rtdetr_r50.py with another model, length and backbone
(``tools/convert_rtdetr.py --backbone ... --input ResNet18_vd_pretrained_from_paddle.pth
--output checkpoints/R-18-vd.pth``)."""
from .common.schedule import COCO_ITERS_PER_EPOCH, rtdetr_schedule
from .models.rtdetr import rtdetr
from .rtdetr_r50 import dataloader, optimizer, train, user_dataset  # noqa: F401

EPOCHS = 120

model = rtdetr(depth=18)
lr_multiplier = rtdetr_schedule(epochs=EPOCHS)
train.update(output_dir="./output/rtdetr_r18", max_iter=EPOCHS * COCO_ITERS_PER_EPOCH,
             init_checkpoint="checkpoints/R-18-vd.pth")
