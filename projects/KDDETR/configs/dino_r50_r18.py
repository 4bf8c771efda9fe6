"""KD-DETR: DINO R50 teacher -> DINO R18 student, COCO 2017, 12 epochs (paper Table 2).

Teacher: a DINO R50 4-scale checkpoint trained with configs/dino_r50.py (12 or 36 epochs);
    put it at checkpoints/dino_r50.pth or set model.teacher_weights=...; detrex's published
    checkpoints go through tools/convert_detrex.py first (see README).
Student: ImageNet R18 backbone, torchvision's resnet18 converted with detectron2's
    tools/convert-torchvision-to-d2.py to checkpoints/R-18.pkl (train.init_checkpoint loads it
    into the student only).
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from .common.data import coco_detr_data
from .common.kd_detr import kd_loss, kd_points
from .common.optim import adamw
from .common.schedule import schedule_12ep
from .common.train import train_defaults, user_dataset_keys
from .models.dino import dino

model = L(KDDETR)(
    teacher=dino(depth=50),
    teacher_weights="checkpoints/dino_r50.pth",
    student=dino(depth=18),
    points=kd_points(general=900, specific=True),  # 900 random anchors + the teacher's 900 queries
    loss=kd_loss(temperature=10.0, cls=1.0, l1=5.0, giou=2.0),
)

dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)  # student parameters only
lr_multiplier = schedule_12ep()
train = train_defaults(output_dir="./output/dino_r50_r18", max_iter=90000)
train.init_checkpoint = "checkpoints/R-18.pkl"  # student backbone
user_dataset = user_dataset_keys()
