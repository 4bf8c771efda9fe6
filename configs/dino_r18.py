"""DINO R18, 4 scales, COCO 2017, 12 epochs: configs/dino_r50.py with another backbone."""
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = dino(depth=18)
train.output_dir = "./output/dino_r18_12ep"
# ImageNet R18: torchvision's resnet18 converted with detectron2's
# tools/convert-torchvision-to-d2.py (detectron2's model zoo hosts only R-50 in this form).
train.init_checkpoint = "checkpoints/R-18.pkl"
