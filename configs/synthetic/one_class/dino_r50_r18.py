"""KD-DETR on the one-class synthetic shapes: the one-class DINO R50 teacher -> DINO R18.

The default class term is the sigmoid one, a binary KL on the one class's probability; the authors' softmax
term is 0 by construction on one class (a softmax over one logit is 1) and is refused here at start-up
(``model.loss.class_term=softmax``). docs/RESULTS.md, "The class term on one class", measures both.
"""
from ...common.kd_detr import kd_detr
from ...models.dino import synthetic_dino
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_dino(depth=50, num_classes=1),
    teacher_weights="output/synthetic/one_class/dino_r50/model_final.pth",
    student=synthetic_dino(depth=18, num_classes=1),
    general=100,
)
train.output_dir = "./output/synthetic/one_class/dino_r50_r18"
