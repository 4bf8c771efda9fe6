"""KD-DETR into a faster student on the synthetic shapes: the synthetic DINO R50 (2 encoder /
3 decoder layers) -> DINO R18 with 1 encoder and 2 decoder layers (the synthetic analogue of
configs/fast_students/dino_r50_r18_enc2_dec3.py). Every student layer learns from the teacher's last."""
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401
from .dino_r18_enc1_dec2 import model as student

model.student = student
train.output_dir = "./output/synthetic/fast_students/dino_r50_r18_enc1_dec2"
