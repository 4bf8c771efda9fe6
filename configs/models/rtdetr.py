"""RT-DETR model config (RT-DETRv2's ``rtdetrv2_r18vd`` / ``rtdetrv2_r50vd``): every size is an argument."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from kddetr.modeling import RTDETR, DeformableDecoder, HungarianMatcher, HybridEncoder, ResNetVd, SetCriterion

from .common import RESNET_CHANNELS, SYNTHETIC, io_defaults

RTDETR_FEATURES = ("res3", "res4", "res5")


def rtdetr(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, enc_ffn_dim=1024, ffn_dim=1024, dec_layers=None,
           num_points=4, num_queries=300, dn_number=100, expansion=None, depth_mult=1.0, norm=None, freeze_at=0):
    """RT-DETR with a ResNet-vd of ``depth``. RT-DETRv2's sizes: R18 3 decoder layers, fusion expansion 0.5,
    BatchNorm trained; R50 and deeper 6 layers, expansion 1.0, frozen BatchNorm (``None`` picks them)."""
    small = depth < 50
    dec_layers = dec_layers if dec_layers is not None else (3 if small else 6)
    expansion = expansion if expansion is not None else (0.5 if small else 1.0)
    norm = norm if norm is not None else ("BN" if small else "FrozenBN")
    channels = RESNET_CHANNELS[depth]
    return L(RTDETR)(
        backbone=L(ResNetVd)(depth=depth, out_features=RTDETR_FEATURES, norm=norm, freeze_at=freeze_at),
        encoder=L(HybridEncoder)(
            input_shapes={f: L(ShapeSpec)(channels=c) for f, c in zip(RTDETR_FEATURES, channels)},
            in_features=RTDETR_FEATURES, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=enc_ffn_dim, dropout=0.0,
            enc_layers=1, attention_levels=(-1,), expansion=expansion, depth_mult=depth_mult, act="silu"),
        # query positions MLP(box), look-forward-twice refinement, heads on the post-norm output
        decoder=L(DeformableDecoder)(num_layers=dec_layers, embed_dim=embed_dim, num_heads=num_heads, ffn_dim=ffn_dim,
                                     dropout=0.0, num_levels=len(RTDETR_FEATURES), num_points=num_points,
                                     anchor_pos=True, anchor_embedding="box", refine="look_forward_twice",
                                     final_norm=False),
        # varifocal loss (alpha 0.75, gamma 2) x 1, L1 x 5, GIoU x 2; matcher costs 2 / 5 / 2 (focal, 0.25)
        criterion=L(SetCriterion)(
            num_classes="${..num_classes}",
            matcher=L(HungarianMatcher)(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, alpha=0.25, gamma=2.0),
            weight_dict={"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0},
            alpha=0.75, gamma=2.0, class_loss="varifocal"),
        num_classes=num_classes,
        embed_dim=embed_dim,
        num_queries=num_queries,
        dn_number=dn_number,
        label_noise_ratio=0.5,
        box_noise_scale=1.0,
        size_divisibility=32,
        # RT-DETR reads RGB scaled to [0, 1], not ImageNet-normalised
        **{**io_defaults(), "pixel_mean": [0.0, 0.0, 0.0], "pixel_std": [255.0, 255.0, 255.0]},
    )


def synthetic_rtdetr(*, depth, num_classes=6, **sizes):
    """A small RT-DETR for the 128 x 128 synthetic shapes, at the synthetic DINO's width, queries and
    decoder depth (configs/models/common.py's SYNTHETIC); ``sizes`` override. Its input is ImageNet-normalised
    as every synthetic model's, since the synthetic ResNet-vd backbones are pretrained on that input
    (kddetr.data.backbones)."""
    small = dict(embed_dim=SYNTHETIC["embed_dim"], enc_ffn_dim=SYNTHETIC["ffn_dim"], ffn_dim=SYNTHETIC["ffn_dim"],
                 dec_layers=SYNTHETIC["dec_layers"], num_queries=SYNTHETIC["num_queries"], norm=SYNTHETIC["norm"],
                 freeze_at=SYNTHETIC["freeze_at"], dn_number=20)
    model = rtdetr(depth=depth, num_classes=num_classes, **{**small, **sizes})
    model.pixel_mean, model.pixel_std = io_defaults()["pixel_mean"], io_defaults()["pixel_std"]
    return model
