"""Parts every model config shares: the Detectron2 ResNet, the channel mapper, the criterion."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BasicStem, ResNet

from kddetr.modeling import (
    ChannelMapper,
    DeformableDecoder,
    DeformableEncoder,
    HungarianMatcher,
    PositionEmbeddingSine,
    SetCriterion,
)

RESNET_CHANNELS = {18: (128, 256, 512), 34: (128, 256, 512), 50: (512, 1024, 2048), 101: (512, 1024, 2048)}


def resnet(*, depth=50, norm="FrozenBN", freeze_at=1, out_features=("res3", "res4", "res5")):
    """Detectron2 ResNet (strides 8, 16, 32 for res3-res5)."""
    # stride_in_1x1 only exists for bottleneck blocks (R50 and deeper); False = torchvision style
    bottleneck = dict(stride_in_1x1=False) if depth >= 50 else {}
    return L(ResNet)(
        stem=L(BasicStem)(in_channels=3, out_channels=64, norm=norm),
        stages=L(ResNet.make_default_stages)(depth=depth, norm=norm, **bottleneck),
        out_features=list(out_features),
        freeze_at=freeze_at,
    )


MULTI_SCALE_FEATURES = ("res3", "res4", "res5")


def channel_mapper(*, depth, embed_dim=256, num_levels=4, norm_groups=32, in_features=MULTI_SCALE_FEATURES):
    """``in_features`` (res3-res5: strides 8, 16, 32) -> ``num_levels`` levels of ``embed_dim``
    (extra levels by stride-2 convs)."""
    channels = RESNET_CHANNELS[depth]
    return L(ChannelMapper)(
        input_shapes={f"res{i + 3}": L(ShapeSpec)(channels=c) for i, c in enumerate(channels)},
        in_features=list(in_features),
        out_channels=embed_dim,
        num_outs=num_levels,
        norm_groups=norm_groups,
    )


def criterion(*, class_weight=1.0, cost_class=2.0):
    """Focal classification + L1 + GIoU, Hungarian matching (costs class/L1/GIoU = cost_class/5/2)."""
    return L(SetCriterion)(
        num_classes="${..num_classes}",
        matcher=L(HungarianMatcher)(cost_class=cost_class, cost_bbox=5.0, cost_giou=2.0, alpha=0.25, gamma=2.0),
        weight_dict={"loss_class": class_weight, "loss_bbox": 5.0, "loss_giou": 2.0},
        alpha=0.25,
        gamma=2.0,
    )


def io_defaults():
    """Input normalisation and evaluation keys of every detrex DETR (RGB, ImageNet statistics)."""
    return dict(pixel_mean=[123.675, 116.280, 103.530], pixel_std=[58.395, 57.120, 57.375],
                select_box_nums_for_evaluation=300, input_format="RGB")


def multi_scale_detr(*, target, depth, num_classes, embed_dim, num_heads, ffn_dim, enc_layers, dec_layers, num_levels,
                     num_points, num_queries, dropout, norm, freeze_at, norm_groups, class_weight, decoder,
                     in_features=MULTI_SCALE_FEATURES, **extra):
    """Backbone -> channel mapper -> deformable encoder/decoder (DINO, Deformable and DAB-Deformable
    DETR); ``decoder`` holds the DeformableDecoder options of the family, ``extra`` its own arguments.
    ``in_features``: the backbone levels the transformer reads, finest first (``("res4", "res5")``
    drops the stride-8 level, most of the encoder's tokens)."""
    return L(target)(
        backbone=resnet(depth=depth, norm=norm, freeze_at=freeze_at, out_features=in_features),
        neck=channel_mapper(depth=depth, embed_dim=embed_dim, num_levels=num_levels, norm_groups=norm_groups,
                            in_features=in_features),
        position_embedding=L(PositionEmbeddingSine)(num_pos_feats=embed_dim // 2, temperature=10000, normalize=True,
                                                    offset=-0.5),
        encoder=L(DeformableEncoder)(num_layers=enc_layers, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
                                     dropout=dropout, num_levels=num_levels, num_points=num_points),
        decoder=L(DeformableDecoder)(num_layers=dec_layers, embed_dim=embed_dim, num_heads=num_heads,
                                     ffn_dim=ffn_dim, dropout=dropout, num_levels=num_levels, num_points=num_points,
                                     **decoder),
        criterion=criterion(class_weight=class_weight, cost_class=2.0),
        num_classes=num_classes,
        num_queries=num_queries,
        embed_dim=embed_dim,
        num_levels=num_levels,
        **extra,
        **io_defaults(),
    )


# Small models for the 128 x 128 synthetic shapes on a CPU: narrower transformer, fewer queries and
# layers, a backbone from the synthetic pretraining (kddetr.data.backbones) with trainable BatchNorm, which
# learned faster than GroupNorm and costs less on a CPU.
SYNTHETIC = dict(num_classes=6, embed_dim=128, num_heads=8, ffn_dim=512, enc_layers=2, dec_layers=3, num_queries=100,
                 norm="BN", freeze_at=0)
