"""ResNet-vd (He et al., "Bag of Tricks", variant D), RT-DETR's backbone, as a Detectron2 ``Backbone``.

Against Detectron2's ResNet: a deep stem (three 3x3 convolutions, 32, 32 and 64 channels, the first of stride
2, then a 3x3 max pool), the stride of a bottleneck in its 3x3 convolution, and a downsampling shortcut that
averages 2x2 blocks before its 1x1 convolution (so it sees every pixel instead of one in four). As in
RT-DETR's code, the first block of every stage has a projection shortcut, ``res2``'s included (stride 1).
Stages are named as Detectron2's (``stem``, ``res2``-``res5``; strides 4, 8, 16, 32).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch.nn.functional as F
from detectron2.layers import Conv2d, FrozenBatchNorm2d, ShapeSpec, get_norm
from detectron2.modeling.backbone import Backbone
from torch import Tensor, nn

#: blocks per stage (res2-res5)
BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)


def conv_norm(cin: int, cout: int, kernel: int, stride: int, norm: str, relu: bool) -> Conv2d:
    """A bias-free convolution with its norm and, if ``relu``, a ReLU (Detectron2's ``Conv2d``)."""
    return Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False, norm=get_norm(norm, cout),
                  activation=F.relu if relu else None)


class Shortcut(nn.Module):
    """Projection shortcut: 2x2 average pooling (ceil mode) when the block downsamples, then a 1x1 conv."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride == 2 else nn.Identity()
        self.conv = conv_norm(cin, cout, 1, 1, norm, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pool(x))


class BasicBlockVd(nn.Module):
    """Two 3x3 convolutions (the first with the stride) and a shortcut (R18, R34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, project: bool, norm: str):
        super().__init__()
        self.conv1 = conv_norm(cin, width, 3, stride, norm, relu=True)
        self.conv2 = conv_norm(width, width, 3, 1, norm, relu=False)
        self.shortcut = Shortcut(cin, width, stride, norm) if project else None

    def forward(self, x: Tensor) -> Tensor:
        short = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(self.conv1(x)) + short)


class BottleneckVd(nn.Module):
    """1x1, 3x3 (with the stride), 1x1 to ``4 * width``, and a shortcut (R50, R101)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, project: bool, norm: str):
        super().__init__()
        self.conv1 = conv_norm(cin, width, 1, 1, norm, relu=True)
        self.conv2 = conv_norm(width, width, 3, stride, norm, relu=True)
        self.conv3 = conv_norm(width, width * 4, 1, 1, norm, relu=False)
        self.shortcut = Shortcut(cin, width * 4, stride, norm) if project else None

    def forward(self, x: Tensor) -> Tensor:
        short = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + short)


class DeepStem(nn.Module):
    """Three 3x3 convolutions (3 -> 32 stride 2 -> 32 -> 64) and a 3x3 stride-2 max pool: stride 4."""

    out_channels = 64
    stride = 4

    def __init__(self, norm: str):
        super().__init__()
        self.conv1 = conv_norm(3, 32, 3, 2, norm, relu=True)
        self.conv2 = conv_norm(32, 32, 3, 1, norm, relu=True)
        self.conv3 = conv_norm(32, 64, 3, 1, norm, relu=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(self.conv3(self.conv2(self.conv1(x))), kernel_size=3, stride=2, padding=1)


class ResNetVd(Backbone):
    """ResNet-vd of ``depth`` 18, 34, 50 or 101, returning ``out_features`` (``[B, C, H / s, W / s]`` each).

    Args:
        depth: 18, 34 (basic blocks), 50 or 101 (bottlenecks).
        out_features: among ``stem``, ``res2``-``res5`` (RT-DETR reads ``res3``-``res5``, strides 8, 16, 32).
        norm: ``"FrozenBN"`` (RT-DETR's R50 and R101) or ``"BN"`` (its R18 and R34 train their statistics).
        freeze_at: Detectron2's convention: 0 trains everything, 1 freezes the stem, 2 the stem and ``res2``...
    """

    def __init__(self, depth: int = 50, out_features: Sequence[str] = ("res3", "res4", "res5"), norm: str = "FrozenBN",
                 freeze_at: int = 0):
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNetVd: depth must be one of {sorted(BLOCKS)}, got {depth}")
        block = BottleneckVd if depth >= 50 else BasicBlockVd
        self.stem = DeepStem(norm)
        self._out_feature_channels = {"stem": DeepStem.out_channels}
        self._out_feature_strides = {"stem": DeepStem.stride}
        cin, stride = DeepStem.out_channels, DeepStem.stride
        self.stage_names = []
        for i, (count, width) in enumerate(zip(BLOCKS[depth], STAGE_WIDTHS)):
            first_stride = 1 if i == 0 else 2
            blocks = []
            for j in range(count):
                blocks.append(block(cin, width, first_stride if j == 0 else 1, project=j == 0, norm=norm))
                cin = width * block.expansion
            name = f"res{i + 2}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            stride *= first_stride
            self._out_feature_channels[name], self._out_feature_strides[name] = cin, stride
        unknown = sorted(set(out_features) - set(self._out_feature_channels))
        if unknown:
            raise ValueError(f"ResNetVd: unknown out_features {unknown}; choose among "
                             f"{list(self._out_feature_channels)}")
        self._out_features = list(out_features)
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> "ResNetVd":
        """Freeze the stem (``freeze_at >= 1``) and the first ``freeze_at - 1`` stages: no gradient, frozen norms."""
        for k, module in enumerate([self.stem] + [getattr(self, n) for n in self.stage_names]):
            if k >= freeze_at:
                break
            for p in module.parameters():
                p.requires_grad_(False)
            FrozenBatchNorm2d.convert_frozen_batchnorm(module)
        return self

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        out = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            out["stem"] = x
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self._out_features:
                out[name] = x
        return out

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                for n in self._out_features}

    @property
    def size_divisibility(self) -> int:
        return 32
