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
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

#: (our pattern, theirs), tried in order on a name without its ``.weight`` / ``.bias`` / statistics leaf
_RULES: List[Tuple[str, str]] = [
    # backbone
    (r"^backbone\.stem\.conv(\d)$", r"backbone.conv1.conv1_\1.conv"),
    (r"^backbone\.stem\.conv(\d)\.norm$", r"backbone.conv1.conv1_\1.norm"),
    (r"^backbone\.res(\d)\.(\d+)\.shortcut\.conv$", "SHORT_CONV"),
    (r"^backbone\.res(\d)\.(\d+)\.shortcut\.conv\.norm$", "SHORT_NORM"),
    (r"^backbone\.res(\d)\.(\d+)\.conv(\d)$", "BRANCH_CONV"),
    (r"^backbone\.res(\d)\.(\d+)\.conv(\d)\.norm$", "BRANCH_NORM"),
    # hybrid encoder
    (r"^encoder\.input_proj\.(\d+)$", r"encoder.input_proj.\1.conv"),
    (r"^encoder\.input_proj\.(\d+)\.norm$", r"encoder.input_proj.\1.norm"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.self_attn(\..+)?$", r"encoder.encoder.\1.layers.\2.self_attn\3"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.norm$", r"encoder.encoder.\1.layers.\2.norm1"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.net\.0$", r"encoder.encoder.\1.layers.\2.linear1"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.net\.3$", r"encoder.encoder.\1.layers.\2.linear2"),
    (r"^encoder\.aifi\.(\d+)\.layers\.(\d+)\.ffn\.norm$", r"encoder.encoder.\1.layers.\2.norm2"),
    (r"^encoder\.(lateral_convs|downsample_convs)\.(\d+)$", r"encoder.\1.\2.conv"),
    (r"^encoder\.(lateral_convs|downsample_convs)\.(\d+)\.norm$", r"encoder.\1.\2.norm"),
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.blocks\.(\d+)\.conv3(\.norm)?$",
     r"encoder.\1.\2.bottlenecks.\3.conv1NORM\4"),
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.blocks\.(\d+)\.conv1(\.norm)?$",
     r"encoder.\1.\2.bottlenecks.\3.conv2NORM\4"),
    (r"^encoder\.(fpn_blocks|pan_blocks)\.(\d+)\.conv(\d)(\.norm)?$", r"encoder.\1.\2.conv\3NORM\4"),
    # decoder
    (r"^input_proj\.(\d+)$", r"decoder.input_proj.\1.conv"),
    (r"^input_proj\.(\d+)\.norm$", r"decoder.input_proj.\1.norm"),
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


def _branch(stage: str, block: str, conv: str) -> str:
    """``branch2a/2b/2c`` of block ``block`` of stage ``res<stage>``."""
    return f"backbone.res_layers.{int(stage) - 2}.blocks.{block}.branch2{'abc'[int(conv) - 1]}"


def rtdetr_name(key: str, model: nn.Module) -> str:
    """The name in RT-DETR's checkpoints of our ``model``'s tensor ``key``."""
    node, _, leaf = key.rpartition(".")
    if leaf not in _LEAVES:
        node, leaf = key, ""
    for ours, theirs in _RULES:
        m = re.match(ours, node)
        if m is None:
            continue
        if theirs in ("SHORT_CONV", "SHORT_NORM"):
            stage, block = m.group(1), m.group(2)
            pooled = isinstance(getattr(model.backbone, f"res{stage}")[int(block)].shortcut.pool, nn.AvgPool2d)
            base = f"backbone.res_layers.{int(stage) - 2}.blocks.{block}.short" + (".conv" if pooled else "")
            name = base + (".conv" if theirs == "SHORT_CONV" else ".norm")
        elif theirs in ("BRANCH_CONV", "BRANCH_NORM"):
            name = _branch(m.group(1), m.group(2), m.group(3)) + (".conv" if theirs == "BRANCH_CONV" else ".norm")
        else:
            name = m.expand(theirs)
            # a CSP layer's convolutions: ``.conv`` for the conv, ``.norm`` for its BatchNorm
            name = name.replace("NORM.norm", ".norm") if "NORM.norm" in name else name.replace("NORM", ".conv")
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
