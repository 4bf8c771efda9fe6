"""KD-DETR on the embedded synthetic shapes: RT-DETR R50 teacher (configs/synthetic/rtdetr_r50.py, trained
first) -> RT-DETR R18 student (configs/synthetic/rtdetr_r18.py's model, schedule and backbone)."""
from ..common.kd_detr import kd_detr
from ..models.rtdetr import synthetic_rtdetr
from .rtdetr_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_rtdetr(depth=50),
    teacher_weights="output/synthetic/rtdetr_r50/model_final.pth",
    student=synthetic_rtdetr(depth=18),
    general=100,
)
train.output_dir = "./output/synthetic/rtdetr_r50_r18"
