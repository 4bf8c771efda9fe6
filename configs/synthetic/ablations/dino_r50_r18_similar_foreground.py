"""KD-DETR Table 1 baseline "similar foreground": logit distillation on each model's own queries
(the authors' baseline loss: unweighted KL x 10 + smooth L1 (beta 1/9), student layer l -> teacher layer l)."""
from ...common.kd_detr import SIMILAR_FOREGROUND, baseline_loss
from ..dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.points = SIMILAR_FOREGROUND
model.loss = baseline_loss()
train.output_dir = "./output/synthetic/ablations/dino_r50_r18_similar_foreground"
