"""DINO R101, 4 scales, COCO 2017, 12 epochs: configs/dino_r50.py with another backbone."""
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = dino(depth=101)
train.output_dir = "./output/dino_r101_12ep"
# ImageNet R101: torchvision's resnet101 converted with detectron2's
# tools/convert-torchvision-to-d2.py (detectron2's model zoo hosts only R-50 in this form).
train.init_checkpoint = "checkpoints/R-101.pkl"
