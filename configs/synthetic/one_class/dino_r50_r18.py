"""KD-DETR on the one-class synthetic shapes: the one-class DINO R50 teacher -> DINO R18.

The authors' softmax class term is 0 by construction on one class (a softmax over one logit is 1),
so this pair distils with the sigmoid class term, a binary KL on the one class's probability
(``class_term="sigmoid"``; a softmax one is refused at start-up). Its temperature and weight are those
of ``studies/benchmark_kd.py --sigmoid`` (docs/RESULTS.md, "The class term per image, by default").
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from ...common.kd_detr import kd_loss, kd_points
from ...models.dino import synthetic_dino
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = L(KDDETR)(
    teacher=synthetic_dino(depth=50, num_classes=1),
    teacher_weights="output/synthetic/one_class/dino_r50/model_final.pth",
    teacher_check=dict(images=50, min_ap=1.0),  # the teacher's AP on 50 test images, checked before training
    student=synthetic_dino(depth=18, num_classes=1),
    points=kd_points(general=100, specific=True),
    loss=kd_loss(temperature=1.0, cls=0.5, l1=5.0, giou=2.0, class_term="sigmoid"),
)
train.output_dir = "./output/synthetic/one_class/dino_r50_r18"
train.init_checkpoint = "synthetic-backbone://R-18"
