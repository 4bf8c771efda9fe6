"""KD-DETR: DINO R50 teacher -> DINO R18 student, COCO 2017, 12 epochs (paper Table 2).

Teacher: a DINO R50 4-scale checkpoint trained with configs/dino_r50.py (12 or 36 epochs);
    put it at checkpoints/dino_r50.pth or set model.teacher_weights=...; detrex's published
    checkpoints go through tools/convert_detrex.py first (see README).
Student: ImageNet R18 backbone, torchvision's resnet18 converted by
    tools/convert_torchvision.py --depth 18 to checkpoints/R-18.pkl (train.init_checkpoint of
    configs/dino_r18.py, loaded into the student only).
Loss: KD-DETR's default, kd_loss() in configs/common/kd_detr.py: the sigmoid class term per image (the same on
any number of devices); model.loss.class_term=softmax is the authors' loss, theirs exactly at 2 images per GPU.
"""
from .common.kd_detr import kd_detr
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = kd_detr(
    teacher=dino(depth=50),
    teacher_weights="checkpoints/dino_r50.pth",
    student=dino(depth=18),
    general=900,  # 900 random anchors + the teacher's 900 queries
)

# Data, AdamW (on the student's parameters only: the teacher is frozen), the 12-epoch schedule and the
# student's ImageNet R18 are the student baseline's (configs/dino_r18.py); only the output moves.
train.output_dir = "./output/dino_r50_r18"
