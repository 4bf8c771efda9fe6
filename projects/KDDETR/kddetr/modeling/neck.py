"""Channel mapper: project backbone levels to the transformer width, add extra levels."""
from __future__ import annotations

from typing import Dict, List, Sequence

from detectron2.layers import ShapeSpec
from torch import Tensor, nn


def _conv_gn(cin: int, cout: int, kernel: int, stride: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.GroupNorm(groups, cout))


class ChannelMapper(nn.Module):
    """Maps ``in_features`` to ``num_outs`` levels of ``out_channels`` with GroupNorm.

    Inputs get a 1x1 conv; each extra level is a 3x3 stride-2 conv on the previous one
    (the first extra one on the last input), as in Deformable DETR / detrex.

    Args:
        input_shapes: backbone ``output_shape()`` (only ``channels`` is used).
        in_features: names of the backbone levels, finest first.
        out_channels: D.
        num_outs: number of output levels (>= len(in_features)).
        norm_groups: GroupNorm groups (32 in DINO).
    """

    def __init__(self, input_shapes: Dict[str, ShapeSpec], in_features: Sequence[str], out_channels: int = 256,
                 num_outs: int = 4, norm_groups: int = 32):
        super().__init__()
        if num_outs < len(in_features):
            raise ValueError(f"num_outs ({num_outs}) < number of in_features ({len(in_features)})")
        self.in_features = list(in_features)
        channels = [input_shapes[f].channels for f in self.in_features]
        self.convs = nn.ModuleList(_conv_gn(c, out_channels, 1, 1, norm_groups) for c in channels)
        extra_in = [channels[-1]] + [out_channels] * (num_outs - len(channels) - 1)
        self.extra_convs = nn.ModuleList(
            _conv_gn(c, out_channels, 3, 2, norm_groups) for c in extra_in[: num_outs - len(channels)])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1)
                nn.init.constant_(m.bias, 0)

    def forward(self, features: Dict[str, Tensor]) -> List[Tensor]:
        inputs = [features[f] for f in self.in_features]
        outs = [conv(x) for conv, x in zip(self.convs, inputs)]
        x = inputs[-1]
        for conv in self.extra_convs:
            x = conv(x)
            outs.append(x)
        return outs
