"""RT-DETR's PyTorch checkpoints (lyuwenyu/RT-DETR, ``rtdetrv2_pytorch``) in this project's names.

:func:`rtdetr_name` gives, for every tensor of our :class:`~kddetr.modeling.detectors.rtdetr.RTDETR`, the name
RT-DETR's code gives the same tensor (``PResNet``, ``HybridEncoder``, ``RTDETRTransformerv2``), so a
checkpoint converts by looking each of ours up. Their names, as their modules register them:

- backbone: ``conv1.conv1_<i>`` (the deep stem), ``res_layers.<s>.blocks.<b>.branch2a|2b|2c`` and
  ``short`` (``short.conv`` when it pools first), each ``.conv`` + ``.norm``;
- encoder: ``input_proj.<l>.conv|norm``, ``encoder.0.layers.0`` (AIFI: ``self_attn``, ``linear1``,
  ``linear2``, ``norm1``, ``norm2``), ``lateral_convs``, ``fpn_blocks``, ``downsample_convs``,
  ``pan_blocks`` (``conv1``-``conv3``, ``bottlenecks.<b>.conv1`` 3x3 and ``.conv2`` 1x1);
- decoder: ``input_proj.<l>.conv|norm``, ``decoder.layers.<i>`` (``self_attn``, ``norm1``, ``cross_attn``,
  ``norm2``, ``linear1``, ``linear2``, ``norm3``), ``query_pos_head``, ``enc_output.proj|norm``,
  ``enc_score_head``, ``enc_bbox_head``, ``dec_score_head.<i>``, ``dec_bbox_head.<i>``,
  ``denoising_class_embed`` (one row more than our label embedding: their padding class, dropped).

Their buffers that we compute instead (``anchors``, ``valid_mask``, ``num_points_scale``) are left out.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Tuple, Union

import torch
from torch import Tensor, nn


def _branch(m: re.Match, model: nn.Module) -> str:
    """Convolution ``conv<k>`` of block ``<b>`` of ``res<s>``: their ``branch2a/2b/2c``."""
    return f"backbone.res_layers.{int(m[1]) - 2}.blocks.{m[2]}.branch2{'abc'[int(m[3]) - 1]}"


def _shortcut(m: re.Match, model: nn.Module) -> str:
    """A projection shortcut: their ``short``, or ``short.conv`` when it average-pools first (a Sequential)."""
    pooled = isinstance(getattr(model.backbone, f"res{m[1]}")[int(m[2])].shortcut.pool, nn.AvgPool2d)
    return f"backbone.res_layers.{int(m[1]) - 2}.blocks.{m[2]}.short" + (".conv" if pooled else "")


#: our convolutions with their norm (Detectron2's ``Conv2d``: the weight on the module, the BatchNorm as its
#: ``.norm``) -> theirs (``ConvNormLayer`` or a conv/norm Sequential: ``.conv`` and ``.norm``), by module name
_CONV_NORM: List[Tuple[str, Union[str, Callable[[re.Match, nn.Module], str]]]] = [
    (r"^backbone\.stem\.conv(\d)$", r"backbone.conv1.conv1_\1"),
    (r"^backbone\.res(\d)\.(\d+)\.conv(\d)$", _branch),
    (r"^backbone\.res(\d)\.(\d+)\.shortcut\.conv$", _shortcut),
    (r"^encoder\.input_proj\.(\d+)$", r"encoder.input_proj.\1"),
    (r"^encoder\.(lateral_convs|downsample_convs)\.(\d+)$", r"encoder.\1.\2"),
    # a RepVGG block: our 3x3 ``conv3`` and 1x1 ``conv1`` are their ``conv1`` and ``conv2``
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.blocks\.(\d+)\.conv3$", r"encoder.\1.\2.bottlenecks.\3.conv1"),
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.blocks\.(\d+)\.conv1$", r"encoder.\1.\2.bottlenecks.\3.conv2"),
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.conv(\d)$", r"encoder.\1.\2.conv\3"),
    (r"^input_proj\.(\d+)$", r"decoder.input_proj.\1"),
]
#: every other module: (our pattern, theirs), on the module's name
_RULES: List[Tuple[str, str]] = [
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.self_attn(\..+)?$", r"encoder.encoder.\1.layers.\2.self_attn\3"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.norm$", r"encoder.encoder.\1.layers.\2.norm1"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.net\.0$", r"encoder.encoder.\1.layers.\2.linear1"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.net\.3$", r"encoder.encoder.\1.layers.\2.linear2"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.norm$", r"encoder.encoder.\1.layers.\2.norm2"),
    (r"^decoder\.layers\.(\d+)\.(self_attn|cross_attn)(\..+)?$", r"decoder.decoder.layers.\1.\2\3"),
    (r"^decoder\.layers\.(\d+)\.(norm1|norm2)$", r"decoder.decoder.layers.\1.\2"),
    (r"^decoder\.layers\.(\d+)\.ffn\.net\.0$", r"decoder.decoder.layers.\1.linear1"),
    (r"^decoder\.layers\.(\d+)\.ffn\.net\.3$", r"decoder.decoder.layers.\1.linear2"),
    (r"^decoder\.layers\.(\d+)\.ffn\.norm$", r"decoder.decoder.layers.\1.norm3"),
    (r"^decoder\.ref_point_head(\..+)$", r"decoder.query_pos_head\1"),
    (r"^enc_output$", "decoder.enc_output.proj"),
    (r"^enc_output_norm$", "decoder.enc_output.norm"),
    (r"^enc_class_head$", "decoder.enc_score_head"),
    (r"^enc_box_head(\..+)$", r"decoder.enc_bbox_head\1"),
    (r"^class_head\.(\d+)$", r"decoder.dec_score_head.\1"),
    (r"^box_head\.(\d+)(\..+)$", r"decoder.dec_bbox_head.\1\2"),
    (r"^denoising\.label_embed$", "decoder.denoising_class_embed"),
]
_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked", "in_proj_weight",
           "in_proj_bias")
#: their buffers we do not keep (computed from the input instead)
COMPUTED = re.compile(r"(^decoder\.(anchors|valid_mask)$|\.num_points_scale$)")


def rtdetr_name(key: str, model: nn.Module) -> str:
    """The name in RT-DETR's checkpoints of our ``model``'s tensor ``key``."""
    node, _, leaf = key.rpartition(".")
    if leaf not in _LEAVES:
        node, leaf = key, ""
    norm = node.endswith(".norm")
    conv = node[: -len(".norm")] if norm else node  # a convolution's BatchNorm is its ``.norm`` child
    for ours, theirs in _CONV_NORM:
        m = re.match(ours, conv)
        if m is not None:
            name = (theirs(m, model) if callable(theirs) else m.expand(theirs)) + (".norm" if norm else ".conv")
            return f"{name}.{leaf}" if leaf else name
    for ours, theirs in _RULES:
        m = re.match(ours, node)
        if m is not None:
            name = m.expand(theirs)
            return f"{name}.{leaf}" if leaf else name
    raise KeyError(f"no RT-DETR name for '{key}'")


def convert_rtdetr_state_dict(theirs: Dict[str, Tensor], model: nn.Module
                              ) -> Tuple[Dict[str, Tensor], List[str], List[str]]:
    """RT-DETR's state dict -> ours for ``model``: (state dict, their keys nothing took, our keys not found or
    of another shape). The denoising label embedding drops their last (padding) row."""
    ours = model.state_dict()
    state, problems, used = {}, [], set()
    for key, target in ours.items():
        name = rtdetr_name(key, model)
        if name not in theirs:
            if key.endswith("num_batches_tracked"):
                continue  # BatchNorm's step counter; FrozenBatchNorm keeps none
            problems.append(f"{key} (theirs: {name})")
            continue
        value = theirs[name]
        if key == "denoising.label_embed.weight" and value.shape[0] == target.shape[0] + 1:
            value = value[:-1]
        if value.shape != target.shape:
            problems.append(f"{key}: theirs {tuple(value.shape)}, ours {tuple(target.shape)}")
            continue
        state[key] = value.to(target.dtype)
        used.add(name)
    unmatched = sorted(k for k in theirs if k not in used and not COMPUTED.search(k)
                       and not k.endswith("num_batches_tracked"))
    return state, unmatched, problems


def rtdetr_model_state(checkpoint: dict) -> Dict[str, Tensor]:
    """The model's tensors of an RT-DETR checkpoint: its EMA weights (``ema.module``, what their released
    files evaluate with) if present, else ``model``, else the dict itself."""
    if isinstance(checkpoint.get("ema"), dict) and "module" in checkpoint["ema"]:
        checkpoint = checkpoint["ema"]["module"]
    elif isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    return {k: v for k, v in checkpoint.items() if torch.is_tensor(v)}
