"""DINO model config (detrex ``dino_r50_4scale``): every size is an argument."""
from detectron2.config import LazyCall as L

from kddetr.modeling import DINO, DeformableDecoder, DeformableEncoder, PositionEmbeddingSine

from .common import SYNTHETIC, channel_mapper, criterion, io_defaults, resnet


def dino(depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6, dec_layers=6,
         num_levels=4, num_points=4, num_queries=900, dn_number=100, dropout=0.0, norm="FrozenBN", freeze_at=1,
         norm_groups=32, share_heads=False):
    return L(DINO)(
        backbone=resnet(depth, norm, freeze_at),
        neck=channel_mapper(depth, embed_dim, num_levels, norm_groups),
        position_embedding=L(PositionEmbeddingSine)(num_pos_feats=embed_dim // 2, temperature=10000, normalize=True,
                                                    offset=-0.5),
        encoder=L(DeformableEncoder)(num_layers=enc_layers, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
                                     dropout=dropout, num_levels=num_levels, num_points=num_points),
        # anchor positions MLP(sine(box)) every layer, look-forward-twice refinement, final norm
        decoder=L(DeformableDecoder)(num_layers=dec_layers, embed_dim=embed_dim, num_heads=num_heads,
                                     ffn_dim=ffn_dim, dropout=dropout, num_levels=num_levels, num_points=num_points,
                                     anchor_pos=True, query_scale=False, refine="look_forward_twice",
                                     final_norm=True),
        criterion=criterion(class_weight=1.0, cost_class=2.0),
        num_classes=num_classes,
        num_queries=num_queries,
        share_heads=share_heads,  # False: one head per decoder layer, as detrex
        embed_dim=embed_dim,
        num_levels=num_levels,
        dn_number=dn_number,
        label_noise_ratio=0.5,
        box_noise_scale=1.0,
        **io_defaults(),
    )


def synthetic_dino(depth, num_classes=6):
    """A small DINO for the 128 x 128 synthetic shapes (see common.SYNTHETIC)."""
    return dino(depth=depth, **{**SYNTHETIC, "num_classes": num_classes}, dn_number=20)
