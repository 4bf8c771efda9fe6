"""KD-DETR Table 5: without the foreground weight (every point counts 1).
Same as `model.loss.foreground_weight=False` on the command line."""
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.loss.foreground_weight = False
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_no_fg_weight"
