"""DINO model config (detrex ``dino_r50_4scale``): every size is an argument."""
from kddetr.modeling import DINO

from .common import SYNTHETIC, multi_scale_detr


def dino(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6, dec_layers=6,
         num_levels=4, num_points=4, num_queries=900, dn_number=100, dropout=0.0, norm="FrozenBN", freeze_at=1,
         norm_groups=32, share_heads=False, in_features=("res3", "res4", "res5")):
    return multi_scale_detr(
        target=DINO, depth=depth, num_classes=num_classes, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
        enc_layers=enc_layers, dec_layers=dec_layers, num_levels=num_levels, num_points=num_points,
        num_queries=num_queries, dropout=dropout, norm=norm, freeze_at=freeze_at, norm_groups=norm_groups,
        class_weight=1.0, in_features=in_features,
        # anchor positions MLP(sine(box)) every layer, look-forward-twice refinement, final norm
        decoder=dict(anchor_pos=True, query_scale=False, refine="look_forward_twice", final_norm=True),
        share_heads=share_heads,  # False: one head per decoder layer, as detrex
        dn_number=dn_number, label_noise_ratio=0.5, box_noise_scale=1.0,
    )


def synthetic_dino(*, depth, num_classes=6, **sizes):
    """A small DINO for the 128 x 128 synthetic shapes (see common.SYNTHETIC); ``sizes`` override
    its entries (e.g. ``enc_layers=1`` for a faster student)."""
    return dino(depth=depth, **{**SYNTHETIC, "num_classes": num_classes, **sizes}, dn_number=20)
