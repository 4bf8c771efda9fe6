"""DAB-DETR (detrex ``dab_detr_r50``) and Conditional DETR (detrex ``conditional_detr_r50``)
model configs: single scale (res5), conditional cross-attention."""
from detectron2.config import LazyCall as L

from kddetr.modeling import DABDETR, ConditionalDecoder, ConditionalDETR, PositionEmbeddingSine, TransformerEncoder

from .common import RESNET_CHANNELS, SYNTHETIC, criterion, io_defaults, resnet


def _single_scale(*, target, depth, num_classes, embed_dim, num_heads, ffn_dim, enc_layers, dec_layers, num_queries,
                  dropout, norm, freeze_at, in_feature, temperature, class_weight, pos_scale, decoder, activation):
    level = int(in_feature[-1]) - 3  # res3..res5 -> index into RESNET_CHANNELS
    return L(target)(
        backbone=resnet(depth=depth, norm=norm, freeze_at=freeze_at, out_features=[in_feature]),
        in_feature=in_feature,
        in_channels=RESNET_CHANNELS[depth][level],
        position_embedding=L(PositionEmbeddingSine)(num_pos_feats=embed_dim // 2, temperature=temperature,
                                                    normalize=True, offset=0.0),
        encoder=L(TransformerEncoder)(num_layers=enc_layers, embed_dim=embed_dim, num_heads=num_heads,
                                      ffn_dim=ffn_dim, dropout=dropout, pos_scale=pos_scale, activation=activation),
        decoder=L(ConditionalDecoder)(num_layers=dec_layers, embed_dim=embed_dim, num_heads=num_heads,
                                      ffn_dim=ffn_dim, dropout=dropout, final_norm=True, activation=activation,
                                      **decoder),
        criterion=criterion(class_weight=class_weight, cost_class=2.0),
        num_classes=num_classes,
        embed_dim=embed_dim,
        num_queries=num_queries,
        **io_defaults(),
    )


def dab_detr(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6, dec_layers=6,
             num_queries=300, dropout=0.0, norm="FrozenBN", freeze_at=1, in_feature="res5"):
    """4-D anchors, width/height-modulated attention, anchor refinement with each layer's
    prediction relative to the previous layer's undetached anchor; position embedding temperature
    20, a position-scaled encoder and PReLU FFNs, as in DAB-DETR (detrex)."""
    return _single_scale(target=DABDETR, depth=depth, num_classes=num_classes, embed_dim=embed_dim,
                         num_heads=num_heads, ffn_dim=ffn_dim, enc_layers=enc_layers, dec_layers=dec_layers,
                         num_queries=num_queries, dropout=dropout, norm=norm, freeze_at=freeze_at,
                         in_feature=in_feature, temperature=20, class_weight=1.0, pos_scale=True, activation="prelu",
                         decoder=dict(anchor_pos=True, modulate_hw=True, refine="look_forward_twice"))


def conditional_detr(*, depth=50, num_classes=80, embed_dim=256, num_heads=8, ffn_dim=2048, enc_layers=6,
                     dec_layers=6, num_queries=300, dropout=0.1, norm="FrozenBN", freeze_at=1, in_feature="res5"):
    """Learned query positions -> reference points, no refinement."""
    return _single_scale(target=ConditionalDETR, depth=depth, num_classes=num_classes, embed_dim=embed_dim,
                         num_heads=num_heads, ffn_dim=ffn_dim, enc_layers=enc_layers, dec_layers=dec_layers,
                         num_queries=num_queries, dropout=dropout, norm=norm, freeze_at=freeze_at,
                         in_feature=in_feature, temperature=10000, class_weight=2.0, pos_scale=False,
                         activation="relu",
                         decoder=dict(anchor_pos=False, modulate_hw=False, refine="none"))


# The synthetic images are 128 px: res5 would leave a 4 x 4 memory, so the small single-scale
# models read res4 (stride 16, like the DC5 variants of the papers).
def synthetic_dab_detr(*, depth, num_classes=6, **sizes):
    return dab_detr(depth=depth, **{**SYNTHETIC, "num_classes": num_classes, **sizes}, in_feature="res4")


def synthetic_conditional_detr(*, depth, num_classes=6, **sizes):
    return conditional_detr(depth=depth, **{**SYNTHETIC, "num_classes": num_classes, **sizes}, dropout=0.0,
                            in_feature="res4")
