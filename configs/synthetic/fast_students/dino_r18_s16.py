"""A DINO R18 with fewer encoder tokens on the synthetic shapes, alone: the transformer reads res4
and res5 (3 levels, strides 16, 32, 64) instead of res3-res5 (4 levels from stride 8). The
baseline of fast_students/dino_r50_r18_s16.py at equal iterations."""
from ...models.dino import synthetic_dino
from ..dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dino(depth=18, num_levels=3, in_features=("res4", "res5"))
train.output_dir = "./output/synthetic/fast_students/dino_r18_s16"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
