"""DINO model config (detrex ``dino_r50_4scale``): every size is an argument."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BasicStem, ResNet

from kddetr.modeling import ChannelMapper, DeformableEncoder, DINODecoder, HungarianMatcher, PositionEmbeddingSine, SetCriterion
from kddetr.modeling import DINO

RESNET_CHANNELS = {18: (128, 256, 512), 34: (128, 256, 512), 50: (512, 1024, 2048), 101: (512, 1024, 2048)}


def resnet(depth=50, norm="FrozenBN", freeze_at=1):
    """Detectron2 ResNet returning res3-res5 (strides 8, 16, 32)."""
    # stride_in_1x1 only exists for bottleneck blocks (R50 and deeper); False = torchvision style
    bottleneck = dict(stride_in_1x1=False) if depth >= 50 else {}
    return L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm=norm),
        stages=L(ResNet.make_default_stages)(depth=depth, norm=norm, **bottleneck),
        out_features=["res3", "res4", "res5"],
        freeze_at=freeze_at,
    )


def dino(depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6, dec_layers=6,
         num_levels=4, num_points=4, num_queries=900, dn_number=100, dropout=0.0, norm="FrozenBN", freeze_at=1,
         norm_groups=32):
    channels = RESNET_CHANNELS[depth]
    return L(DINO)(
        backbone=resnet(depth, norm, freeze_at),
        neck=L(ChannelMapper)(
            input_shapes={f"res{i + 3}": L(ShapeSpec)(channels=c) for i, c in enumerate(channels)},
            in_features=["res3", "res4", "res5"],
            out_channels=embed_dim,
            num_outs=num_levels,
            norm_groups=norm_groups,
        ),
        position_embedding=L(PositionEmbeddingSine)(num_pos_feats=embed_dim // 2, temperature=10000, normalize=True,
                                                    offset=-0.5),
        encoder=L(DeformableEncoder)(num_layers=enc_layers, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
                                     dropout=dropout, num_levels=num_levels, num_points=num_points),
        decoder=L(DINODecoder)(num_layers=dec_layers, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
                               dropout=dropout, num_levels=num_levels, num_points=num_points),
        criterion=L(SetCriterion)(
            num_classes="${..num_classes}",
            matcher=L(HungarianMatcher)(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, alpha=0.25, gamma=2.0),
            weight_dict={"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0},
            alpha=0.25,
            gamma=2.0,
        ),
        num_classes=num_classes,
        num_queries=num_queries,
        embed_dim=embed_dim,
        num_levels=num_levels,
        dn_number=dn_number,
        label_noise_ratio=0.5,
        box_noise_scale=1.0,
        pixel_mean=[123.675, 116.280, 103.530],
        pixel_std=[58.395, 57.120, 57.375],
        select_box_nums_for_evaluation=300,
        input_format="RGB",
    )


def synthetic_dino(depth, num_classes=6):
    """A small DINO for the 128 x 128 synthetic shapes on a CPU: narrower transformer, fewer
    queries and layers, a backbone trained from scratch (no ImageNet weights here) with
    trainable BatchNorm, which learned faster than GroupNorm and costs less on a CPU."""
    return dino(depth=depth, num_classes=num_classes, embed_dim=128, num_heads=8, ffn_dim=512, enc_layers=2,
                dec_layers=3, num_queries=100, dn_number=20, norm="BN", freeze_at=0)
