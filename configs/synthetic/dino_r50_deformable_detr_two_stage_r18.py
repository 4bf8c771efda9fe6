"""A heterogeneous pair: DINO R50 teacher (900 -> here 100 two-stage queries, denoising) ->
two-stage Deformable DETR R18 student with box refinement (both decode box queries, so they share
the distillation points). A plain Deformable DETR student (learned query embeddings) would be
refused at build time: its queries live in another space.
"""
from detectron2.config import LazyCall as L

from kddetr.distill import KDDETR

from ..common.kd_detr import kd_loss, kd_points
from ..models.deformable_detr import synthetic_deformable_detr
from ..models.dino import synthetic_dino
from .dino_r50 import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401

model = L(KDDETR)(
    teacher=synthetic_dino(depth=50),
    teacher_weights="output/synthetic/dino_r50/model_final.pth",
    teacher_check=dict(images=50, min_ap=1.0),  # the teacher's AP on 50 test images, checked before training
    student=synthetic_deformable_detr(depth=18, with_box_refine=True, two_stage=True),
    points=kd_points(general=100, specific=True),
    # the class term per image, x 2: the authors' sum over a process's images at their 2 per GPU, on any layout
    loss=kd_loss(temperature=10.0, cls=2.0, l1=5.0, giou=2.0),
)
train.output_dir = "./output/synthetic/dino_r50_deformable_detr_two_stage_r18"
train.init_checkpoint = "synthetic-backbone://R-18"  # the student's pretrained backbone (kddetr.data.backbones)
