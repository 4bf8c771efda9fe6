"""A faster DINO R18 on the synthetic shapes, alone: 1 encoder and 2 decoder layers (the synthetic
DINO has 2 and 3). The baseline of fast_students/dino_r50_r18_enc1_dec2.py at equal iterations."""
from ...models.dino import synthetic_dino
from ..dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_dino(depth=18, enc_layers=1, dec_layers=2)
train.output_dir = "./output/synthetic/fast_students/dino_r18_enc1_dec2"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
