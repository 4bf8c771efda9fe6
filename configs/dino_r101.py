"""DINO R101, 4 scales, COCO 2017, 12 epochs: configs/dino_r50.py with another backbone."""
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .models.dino import dino

model = dino(depth=101)
train.output_dir = "./output/dino_r101_12ep"
# ImageNet R101: tools/convert_torchvision.py --depth 101 (Detectron2 hosts only R-50 in this form)
train.init_checkpoint = "checkpoints/R-101.pkl"
