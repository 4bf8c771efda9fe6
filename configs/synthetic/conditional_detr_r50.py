"""Conditional DETR R50 on the embedded synthetic shapes (single scale (res3 here, normalised projection), learned query
embeddings, general points are random embeddings); the schedule of configs/synthetic/dino_r50.py stretched to 4000
iterations, as DAB-DETR's (configs/synthetic/dab_detr_r50.py): the single-scale families leave the all-background
plateau late."""
from ..models.dab_detr import synthetic_conditional_detr
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = synthetic_conditional_detr(depth=50)
train.output_dir = "./output/synthetic/conditional_detr_r50"
# 4x DINO's 1000 iterations (warm-up and decay scale with it), as configs/synthetic/dab_detr_r50.py: 4.1 AP at
# iteration 1000 of it, 42.8 at 4000 (docs/RESULTS.md, "A Conditional DETR R50 teacher in this setting"; 27 min)
train.max_iter = 4000
