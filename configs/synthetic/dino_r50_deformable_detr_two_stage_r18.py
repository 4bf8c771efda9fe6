"""A heterogeneous pair: DINO R50 teacher (900 -> here 100 two-stage queries, denoising) ->
two-stage Deformable DETR R18 student with box refinement (both decode box queries, so they share
the distillation points). A plain Deformable DETR student (learned query embeddings) would be
refused at build time: its queries live in another space.
"""
from ..models.deformable_detr import synthetic_deformable_detr
from .dino_r50_r18 import dataloader, lr_multiplier, model, optimizer, train, user_dataset  # noqa: F401

model.student = synthetic_deformable_detr(depth=18, with_box_refine=True, two_stage=True)
train.output_dir = "./output/synthetic/dino_r50_deformable_detr_two_stage_r18"
