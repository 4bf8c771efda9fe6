"""AdamW with the backbone at 0.1x the base learning rate (DETR / detrex)."""
import torch
from detectron2.config import LazyCall as L
from detectron2.solver.build import get_default_optimizer_params

from kddetr.solver import LrFactor


def adamw(*, lr=1e-4, weight_decay=1e-4, backbone_lr_factor=0.1, betas=(0.9, 0.999)):
    return L(torch.optim.AdamW)(
        params=L(get_default_optimizer_params)(
            # model is filled in by train_net.py
            base_lr="${..lr}",
            weight_decay_norm=0.0,
            lr_factor_func=L(LrFactor)(pattern="backbone", factor=backbone_lr_factor),
        ),
        lr=lr,
        betas=betas,
        weight_decay=weight_decay,
    )
