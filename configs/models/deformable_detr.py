"""Deformable DETR (detrex ``deformable_detr_r50``, ``_with_box_refine``, ``_two_stage``) and
DAB-Deformable DETR (detrex ``dab_deformable_detr_r50``) model configs."""
from kddetr.modeling import DABDeformableDETR, DeformableDETR

from .common import SYNTHETIC, multi_scale_detr


def deformable_detr(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=1024, enc_layers=6,
                    dec_layers=6, num_levels=4, num_points=4, num_queries=300, dropout=0.1, norm="FrozenBN",
                    freeze_at=1, norm_groups=32, with_box_refine=False, two_stage=False):
    """Plain Deformable DETR by default (the paper's 43.8 AP R50 model, KD-DETR Table 2)."""
    return multi_scale_detr(
        target=DeformableDETR, depth=depth, num_classes=num_classes, embed_dim=embed_dim, num_heads=num_heads,
        ffn_dim=ffn_dim, enc_layers=enc_layers, dec_layers=dec_layers, num_levels=num_levels, num_points=num_points,
        num_queries=num_queries, dropout=dropout, norm=norm, freeze_at=freeze_at, norm_groups=norm_groups,
        class_weight=2.0,
        # positions come with the queries; no final norm (post-norm layers)
        decoder=dict(anchor_pos=False, query_scale=False, refine="iterative" if with_box_refine else "none",
                     final_norm=False),
        with_box_refine=with_box_refine, two_stage=two_stage,
    )


def dab_deformable_detr(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6,
                        dec_layers=6, num_levels=4, num_points=4, num_queries=300, dropout=0.0, norm="FrozenBN",
                        freeze_at=1, norm_groups=32):
    return multi_scale_detr(
        target=DABDeformableDETR, depth=depth, num_classes=num_classes, embed_dim=embed_dim, num_heads=num_heads,
        ffn_dim=ffn_dim, enc_layers=enc_layers, dec_layers=dec_layers, num_levels=num_levels, num_points=num_points,
        num_queries=num_queries, dropout=dropout, norm=norm, freeze_at=freeze_at, norm_groups=norm_groups,
        class_weight=1.0,
        # anchor positions MLP(sine(box)) scaled by MLP(content), per-layer refinement
        decoder=dict(anchor_pos=True, query_scale=True, refine="iterative", final_norm=False),
    )


def synthetic_deformable_detr(*, depth, num_classes=6, **options):
    """A small Deformable DETR for the synthetic shapes (see common.SYNTHETIC); no dropout, as the
    other synthetic models."""
    return deformable_detr(depth=depth, **{**SYNTHETIC, "num_classes": num_classes}, dropout=0.0, **options)


def synthetic_dab_deformable_detr(*, depth, num_classes=6):
    return dab_deformable_detr(depth=depth, **{**SYNTHETIC, "num_classes": num_classes})
