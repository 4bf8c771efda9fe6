"""RT-DETR's hybrid encoder (Zhao et al., CVPR 2024): attention within the coarsest level only (AIFI), then
convolutional fusion across levels (CCFM), with RepVGG blocks that fold into one 3x3 convolution for
deployment (:func:`fuse_repvgg`).

``[B, C_l, H_l, W_l]`` backbone levels (strides 8, 16, 32) -> ``[B, D, H_l, W_l]`` at the same strides:

1. a 1x1 convolution + BatchNorm projects each level to ``D``;
2. AIFI: transformer encoder layers over the stride-32 level only, with a 2-D sin-cos position embedding
   (:func:`sincos_2d`), the one place where tokens attend to each other;
3. CCFM, top-down: the coarser map goes through a 1x1 lateral convolution, is upsampled x2 (nearest) and fused
   with the finer one by a :class:`CSPRepLayer`; bottom-up: the finer result goes through a 3x3 stride-2
   convolution and is fused with the coarser top-down output by another :class:`CSPRepLayer`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from torch import Tensor, nn

from .layers.transformer import TransformerEncoder

ACTIVATIONS = {"silu": F.silu, "relu": F.relu, None: None}


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, act: Optional[str] = None) -> Conv2d:
    """A bias-free convolution, BatchNorm and an optional activation (Detectron2's ``Conv2d``)."""
    return Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False, norm=get_norm("BN", cout),
                  activation=ACTIVATIONS[act])


class RepVggBlock(nn.Module):
    """``act(BN(conv3x3(x)) + BN(conv1x1(x)))`` in training; after :meth:`fuse`, ``act(conv3x3'(x))`` with
    one kernel and bias that compute the same in eval mode (the deployment form)."""

    def __init__(self, channels: int, act: str = "silu"):
        super().__init__()
        self.conv3 = conv_bn(channels, channels, 3)
        self.conv1 = conv_bn(channels, channels, 1)
        self.fused: Optional[nn.Conv2d] = None
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        y = self.fused(x) if self.fused is not None else self.conv3(x) + self.conv1(x)
        return ACTIVATIONS[self.act](y)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold both branches and their BatchNorms (with their running statistics) into one 3x3 convolution.
        Only for inference: the fused block has no BatchNorm left to train."""
        kernel, bias = 0, 0
        for branch in (self.conv3, self.conv1):
            scale = branch.norm.weight / (branch.norm.running_var + branch.norm.eps).sqrt()
            k = branch.weight * scale[:, None, None, None]
            kernel = kernel + (F.pad(k, [1, 1, 1, 1]) if k.shape[-1] == 1 else k)
            bias = bias + branch.norm.bias - branch.norm.running_mean * scale
        channels = self.conv3.weight.shape[0]
        self.fused = nn.Conv2d(channels, channels, 3, padding=1).to(kernel)
        self.fused.weight.copy_(kernel)
        self.fused.bias.copy_(bias)
        del self.conv3, self.conv1
        self.conv3 = self.conv1 = None


class CSPRepLayer(nn.Module):
    """Cross-stage partial fusion: ``conv3(RepVGG^n(conv1(x)) + conv2(x))`` with 1x1 convolutions to
    ``expansion * cout`` channels (``conv3`` is the identity when that is ``cout``)."""

    def __init__(self, cin: int, cout: int, num_blocks: int = 3, expansion: float = 1.0, act: str = "silu"):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = conv_bn(cin, hidden, 1, act=act)
        self.conv2 = conv_bn(cin, hidden, 1, act=act)
        self.blocks = nn.Sequential(*[RepVggBlock(hidden, act) for _ in range(num_blocks)])
        self.conv3 = conv_bn(hidden, cout, 1, act=act) if hidden != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.blocks(self.conv1(x)) + self.conv2(x))


def sincos_2d(h: int, w: int, dim: int, temperature: float = 10000.0, device=None) -> Tensor:
    """The 2-D sin-cos embedding RT-DETR's code adds in AIFI, for an ``h x w`` map flattened row by row:
    ``[1, h * w, dim]``, four blocks of ``dim / 4`` (sin a, cos a, sin b, cos b) at frequencies
    ``temperature^(-i / (dim / 4))``. Its code lays its grid out as ``w x h``, so position ``p`` gets
    ``a = p // h`` and ``b = p % h``: on a square map the row and the column; kept as is, since the released
    weights were trained with it (``tests/test_rtdetr.py`` checks it against that construction)."""
    if dim % 4:
        raise ValueError(f"the 2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    p = torch.arange(h * w, device=device)
    omega = temperature ** -(torch.arange(dim // 4, device=device, dtype=torch.float32) / (dim // 4))
    a, b = (p // h).float()[:, None] * omega, (p % h).float()[:, None] * omega
    return torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], dim=1)[None]


class HybridEncoder(nn.Module):
    """AIFI + CCFM over the backbone levels ``in_features`` (finest first).

    Args:
        input_shapes: the backbone's ``output_shape()``.
        in_features: e.g. ``("res3", "res4", "res5")``.
        embed_dim: D (256).
        num_heads, ffn_dim, dropout, enc_layers: AIFI's layers (8, 1024, 0.0, 1; GELU).
        attention_levels: indices into ``in_features`` of the levels AIFI attends within (RT-DETR: the last).
        expansion, depth_mult: CSPRepLayer width (R18: 0.5, R50: 1.0) and depth (``round(3 * depth_mult)``
            RepVGG blocks).
        act: the fusion's activation (SiLU).
        temperature: of the position embedding.
    """

    def __init__(self, input_shapes: Dict[str, ShapeSpec], in_features: Sequence[str] = ("res3", "res4", "res5"),
                 embed_dim: int = 256, num_heads: int = 8, ffn_dim: int = 1024, dropout: float = 0.0,
                 enc_layers: int = 1, attention_levels: Sequence[int] = (-1,), expansion: float = 1.0,
                 depth_mult: float = 1.0, act: str = "silu", temperature: float = 10000.0):
        super().__init__()
        self.in_features = list(in_features)
        n = len(self.in_features)
        self.embed_dim, self.temperature = embed_dim, temperature
        self.attention_levels = sorted({i % n for i in attention_levels})
        self.input_proj = nn.ModuleList(conv_bn(input_shapes[f].channels, embed_dim, 1) for f in self.in_features)
        self.aifi = nn.ModuleList(TransformerEncoder(num_layers=enc_layers, embed_dim=embed_dim, num_heads=num_heads,
                                                     ffn_dim=ffn_dim, dropout=dropout, activation="gelu")
                                  for _ in self.attention_levels)
        blocks = round(3 * depth_mult)
        self.lateral_convs = nn.ModuleList(conv_bn(embed_dim, embed_dim, 1, act=act) for _ in range(n - 1))
        self.fpn_blocks = nn.ModuleList(CSPRepLayer(2 * embed_dim, embed_dim, blocks, expansion, act)
                                        for _ in range(n - 1))
        self.downsample_convs = nn.ModuleList(conv_bn(embed_dim, embed_dim, 3, 2, act=act) for _ in range(n - 1))
        self.pan_blocks = nn.ModuleList(CSPRepLayer(2 * embed_dim, embed_dim, blocks, expansion, act)
                                        for _ in range(n - 1))

    def forward(self, features: Dict[str, Tensor], padding_masks: Optional[List[Tensor]] = None) -> List[Tensor]:
        """``features``: the backbone's levels; ``padding_masks``: per level ``[B, H_l, W_l]`` bool (True on
        padding, so AIFI attends to image tokens only), or None. Returns the fused levels, finest first."""
        feats = [proj(features[f]) for proj, f in zip(self.input_proj, self.in_features)]
        for layer, lvl in zip(self.aifi, self.attention_levels):
            b, d, h, w = feats[lvl].shape
            tokens = feats[lvl].flatten(2).transpose(1, 2)
            pos = sincos_2d(h, w, d, self.temperature, tokens.device).to(tokens.dtype)
            mask = padding_masks[lvl].flatten(1) if padding_masks is not None else None
            feats[lvl] = layer(tokens, pos.expand(b, -1, -1), mask).transpose(1, 2).reshape(b, d, h, w)
        # top-down: from the coarsest level, each step fuses the upsampled lateral output with the finer level
        top_down = [feats[-1]]
        for k, lvl in enumerate(range(len(feats) - 1, 0, -1)):
            lateral = self.lateral_convs[k](top_down[0])
            top_down[0] = lateral
            up = F.interpolate(lateral, scale_factor=2.0, mode="nearest")
            top_down.insert(0, self.fpn_blocks[k](torch.cat([up, feats[lvl - 1]], dim=1)))
        # bottom-up: each step fuses the downsampled finer output with the top-down output one level coarser
        outs = [top_down[0]]
        for k in range(len(feats) - 1):
            down = self.downsample_convs[k](outs[-1])
            outs.append(self.pan_blocks[k](torch.cat([down, top_down[k + 1]], dim=1)))
        return outs


def fuse_repvgg(model: nn.Module) -> nn.Module:
    """Re-parameterise every :class:`RepVggBlock` of ``model`` for deployment (in place; eval mode only)."""
    for m in model.modules():
        if isinstance(m, RepVggBlock) and m.fused is None:
            m.fuse()
    return model
