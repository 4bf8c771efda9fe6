"""DINO R50 on the embedded synthetic shapes, sized for a CPU (see README for timings)."""
import torch

from ..common.data import synthetic_detr_data
from ..common.optim import adamw
from ..common.schedule import step_schedule
from ..common.train import train_defaults, user_dataset_keys
from ..models.dino import synthetic_dino

MAX_ITER = 1000

model = synthetic_dino(depth=50)
dataloader = synthetic_detr_data(total_batch_size=8, num_workers=1)
optimizer = adamw(lr=4e-4, weight_decay=1e-4, backbone_lr_factor=1.0)  # backbone trains from scratch
lr_multiplier = step_schedule(max_iter=MAX_ITER, decay_iter=int(MAX_ITER * 0.85), warmup_iter=100)
train = train_defaults(output_dir="./output/synthetic/dino_r50", max_iter=MAX_ITER,
                       device="cuda" if torch.cuda.is_available() else "cpu",
                       eval_period=500, checkpoint_period=500, log_period=10)
user_dataset = user_dataset_keys()
