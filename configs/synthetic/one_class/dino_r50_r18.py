"""KD-DETR on the one-class synthetic shapes: the one-class DINO R50 teacher -> DINO R18.

The authors' softmax class term is 0 by construction on one class (a softmax over one logit is 1),
so this pair distils with the sigmoid class term, a binary KL on the one class's probability
(``class_term="sigmoid"``; a softmax one is refused at start-up). Its temperature and weight are those
of ``studies/benchmark_kd.py --sigmoid`` (docs/RESULTS.md, "The class term per image, by default").
"""
from ...common.kd_detr import kd_detr, kd_loss
from ...models.dino import synthetic_dino
from .dino_r18 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = kd_detr(
    teacher=synthetic_dino(depth=50, num_classes=1),
    teacher_weights="output/synthetic/one_class/dino_r50/model_final.pth",
    student=synthetic_dino(depth=18, num_classes=1),
    general=100,
    loss=kd_loss(temperature=1.0, cls=0.5, l1=5.0, giou=2.0, class_term="sigmoid"),
)
train.output_dir = "./output/synthetic/one_class/dino_r50_r18"
