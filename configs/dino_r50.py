"""DINO R50, 4 scales, COCO 2017, 12 epochs (detrex dino_r50_4scale_12ep)."""
from .common.data import coco_detr_data
from .common.optim import adamw
from .common.schedule import schedule_12ep
from .common.train import train_defaults, user_dataset_keys
from .models.dino import dino

model = dino(depth=50)
dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_12ep()
train = train_defaults(output_dir="./output/dino_r50_12ep", max_iter=90000)
# ImageNet R50 from detectron2's model zoo (torchvision weights, RGB).
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
user_dataset = user_dataset_keys()
