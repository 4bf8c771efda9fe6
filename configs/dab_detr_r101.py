"""DAB-DETR R101, COCO 2017, 50 epochs (detrex dab_detr_r101 settings; a KD-DETR teacher).

Teacher weights from detrex: tools/convert_detrex.py --config-file configs/dab_detr_r101.py
--input <detrex checkpoint> --output checkpoints/dab_detr_r101.pth
"""
from .common.data import coco_detr_data
from .common.optim import adamw
from .common.schedule import schedule_50ep
from .common.train import train_defaults, user_dataset_keys
from .models.dab_detr import dab_detr

model = dab_detr(depth=101)
dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_50ep()  # 50 epochs, lr x0.1 at epoch 40
train = train_defaults(output_dir="./output/dab_detr_r101", max_iter=375000)
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-101.pkl"
user_dataset = user_dataset_keys()
