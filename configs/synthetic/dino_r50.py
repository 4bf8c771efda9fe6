"""DINO R50 on the embedded synthetic shapes, sized for a CPU (see README for timings)."""
import torch

from ..common.data import synthetic_detr_data
from ..common.optim import adamw
from ..common.schedule import synthetic_schedule
from ..common.train import train_defaults, user_dataset_keys
from ..models.dino import synthetic_dino

MAX_ITER = 1000

model = synthetic_dino(depth=50)
dataloader = synthetic_detr_data(total_batch_size=8, num_workers=1)
optimizer = adamw(lr=4e-4, weight_decay=1e-4, backbone_lr_factor=1.0)  # see below: not detrex's 0.1
lr_multiplier = synthetic_schedule(MAX_ITER)  # 100 iterations of warm-up, x0.1 at 850
# The backbone starts from its synthetic pretraining (ResNet classifier on crops of synthetic_train, cached on
# first use; kddetr.data.backbones), as the COCO configs start from ImageNet's R-50.pkl. It learns at the full
# rate, unlike detrex's 0.1x: 300 steps on 32-px crops are no ImageNet, and at 0.1x the R18 alone lost
# 7.3 AP at 200 iterations (seed 0) (docs/RESULTS.md, "Pretrained synthetic backbones").
train = train_defaults(output_dir="./output/synthetic/dino_r50", max_iter=MAX_ITER,
                       init_checkpoint="synthetic-backbone://R-50",
                       device="cuda" if torch.cuda.is_available() else "cpu",
                       eval_period=500, checkpoint_period=500, log_period=10)
user_dataset = user_dataset_keys()
