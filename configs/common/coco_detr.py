"""The COCO setting the DETR configs share (detrex's): COCO 2017 at batch 16, AdamW 1e-4 (backbone x0.1), the
ImageNet R50 from detectron2's model zoo, 50 epochs with lr x0.1 at epoch 40 (DAB-DETR, Deformable DETR,
DAB-Deformable DETR, Conditional DETR; DINO's configs change it to 12). A family's R50 config is this plus its
``model`` and output folder."""
from .data import coco_detr_data
from .optim import adamw
from .schedule import schedule_50ep
from .train import train_defaults, user_dataset_keys

dataloader = coco_detr_data(total_batch_size=16)
optimizer = adamw(lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1)
lr_multiplier = schedule_50ep()  # 50 epochs, lr x0.1 at epoch 40
train = train_defaults(output_dir="./output/coco_detr", max_iter=375000)
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
user_dataset = user_dataset_keys()
