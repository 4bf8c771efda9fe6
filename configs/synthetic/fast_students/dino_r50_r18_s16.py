"""KD-DETR into a student with fewer encoder tokens on the synthetic shapes: the synthetic DINO R50
(4 levels from stride 8) -> DINO R18 reading 3 levels from stride 16 (the synthetic analogue of
configs/fast_students/dino_r50_r18_s16_enc2_dec3.py's levels). KD-DETR distils predictions at
shared points, so the two may read different levels."""
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401
from .dino_r18_s16 import model as student

model.student = student
train.output_dir = "./output/synthetic/fast_students/dino_r50_r18_s16"
