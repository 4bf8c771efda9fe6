"""KD-DETR: RT-DETR R50 teacher (configs/rtdetr_r50.py, or RT-DETRv2-L's release converted with
tools/convert_rtdetr.py, at checkpoints/rtdetr_r50.pth) -> RT-DETR R18 student, COCO 2017 at 640 x 640:
configs/dino_r50_rtdetr_r18.py with another teacher."""
from .dino_r50_rtdetr_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401
from .models.rtdetr import rtdetr

model.teacher = rtdetr(depth=50)
model.teacher_weights = "checkpoints/rtdetr_r50.pth"
train.output_dir = "./output/rtdetr_r50_r18"
