"""detrex parameter names -> ours, so detrex's published checkpoints can be teachers.

Covers DINO, DAB-DETR, Deformable DETR (plain, ``with_box_refine``, ``two_stage``),
DAB-Deformable DETR and Conditional DETR. The names were read from detrex's modules
(``BaseTransformerLayer`` keeps ``attentions.{k}``, ``norms.{k}``, ``ffns.0``; detectors keep
``class_embed``/``bbox_embed`` per decoder layer, the encoder's proposal head last). detrex
registers some modules twice, so a checkpoint holds the same tensor under two names
(``transformer.decoder.class_embed.*``, ``ffns.0.activation``); such aliases are accepted.
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from .modeling.detectors import DABDETR, DINO, ConditionalDETR, DABDeformableDETR, DeformableDETR, SingleScaleDETR

FAMILIES = (DINO, DABDETR, DeformableDETR, DABDeformableDETR, ConditionalDETR)

_FFN = [(r"\.ffn\.net\.0\.", ".ffns.0.layers.0.0."), (r"\.ffn\.net\.1\.", ".ffns.0.layers.0.1."),
        (r"\.ffn\.net\.3\.", ".ffns.0.layers.1.")]
_CONDITIONAL_ATTN = {"sa_q_content": "0.query_content_proj", "sa_q_pos": "0.query_pos_proj",
                     "sa_k_content": "0.key_content_proj", "sa_k_pos": "0.key_pos_proj", "sa_v": "0.value_proj",
                     "sa_out": "0.out_proj", "ca_q_content": "1.query_content_proj", "ca_q_pos": "1.query_pos_proj",
                     "ca_q_sine": "1.query_pos_sine_proj", "ca_k_content": "1.key_content_proj",
                     "ca_k_pos": "1.key_pos_proj", "ca_v": "1.value_proj", "ca_out": "1.out_proj"}


def _family(model: nn.Module) -> nn.Module:
    if not isinstance(model, FAMILIES):
        raise TypeError(f"no detrex names known for {type(model).__name__}; known: {[f.__name__ for f in FAMILIES]}")
    if isinstance(model, DINO) and not isinstance(model.class_head, nn.ModuleList):
        raise ValueError("detrex's DINO has one class/box head per decoder layer: convert into a DINO built with "
                         "share_heads=False (the default of configs/models/dino.py)")
    return model


def detrex_name(key: str, model: nn.Module) -> str:
    """detrex's name of our parameter or buffer ``key`` in ``model``."""
    _family(model)
    L = model.decoder.num_layers
    single = isinstance(model, SingleScaleDETR)
    k = key
    if k.startswith(("backbone.", "input_proj.")):
        return k
    k = re.sub(r"^neck\.(convs|extra_convs)\.(\d+)\.0\.", r"neck.\1.\2.conv.", k)
    k = re.sub(r"^neck\.(convs|extra_convs)\.(\d+)\.1\.", r"neck.\1.\2.norm.", k)
    if k.startswith("neck."):
        return k
    if k == "level_embed":
        return "transformer.level_embeds"
    m = re.match(r"^encoder\.layers\.(\d+)\.(.*)$", k)
    if m:
        i, rest = m.groups()
        rest = "." + rest
        rest = re.sub(r"^\.self_attn\.", ".attentions.0.attn." if single else ".attentions.0.", rest)
        rest = re.sub(r"^\.norm\.", ".norms.0.", rest)
        rest = re.sub(r"^\.ffn\.norm\.", ".norms.1.", rest)
        for a, b in _FFN:
            rest = re.sub("^" + a, b, rest)
        return f"transformer.encoder.layers.{i}{rest}"
    m = re.match(r"^decoder\.layers\.(\d+)\.(.*)$", k)
    if m:
        i, rest = m.groups()
        rest = "." + rest
        first = rest.split(".")[1]
        if first in _CONDITIONAL_ATTN:
            rest = rest.replace(f".{first}.", f".attentions.{_CONDITIONAL_ATTN[first]}.", 1)
        rest = re.sub(r"^\.self_attn\.", ".attentions.0.attn.", rest)
        rest = re.sub(r"^\.cross_attn\.", ".attentions.1.", rest)
        rest = re.sub(r"^\.norm1\.", ".norms.0.", rest)
        rest = re.sub(r"^\.norm2\.", ".norms.1.", rest)
        rest = re.sub(r"^\.ffn\.norm\.", ".norms.2.", rest)
        for a, b in _FFN:
            rest = re.sub("^" + a, b, rest)
        return f"transformer.decoder.layers.{i}{rest}"
    if k.startswith("decoder.norm."):
        return k.replace("decoder.norm.", "transformer.decoder." + ("norm." if isinstance(model, DINO)
                                                                     else "post_norm_layer."), 1)
    if k.startswith(("decoder.", "encoder.")):  # ref_point_head, query_scale, ref_anchor_head
        return "transformer." + k
    # heads: per layer -> class_embed.{i}; shared -> class_embed (single scale) or class_embed.0
    # (plain Deformable DETR registers one head under every index); proposal head -> index L
    for ours, theirs in (("class_head", "class_embed"), ("box_head", "bbox_embed")):
        if k.startswith(ours + "."):
            rest = k[len(ours):]
            if not re.match(r"^\.\d+\.", rest) and not single:
                rest = ".0" + rest
            return theirs + rest
        if k.startswith(f"enc_{ours}."):
            return f"{theirs}.{L}" + k[len(ours) + 4:]
    if isinstance(model, DINO):
        k = re.sub(r"^denoising\.label_embed\.", "label_enc.", k)
        k = re.sub(r"^(tgt_embed|enc_output|enc_output_norm)\.", r"transformer.\1.", k)
        return k
    if isinstance(model, DeformableDETR):
        k = re.sub(r"^query_embed\.", "query_embedding.", k)
        k = re.sub(r"^(reference_points|pos_trans|pos_trans_norm|enc_output|enc_output_norm)\.", r"transformer.\1.", k)
        return k
    if isinstance(model, DABDeformableDETR):
        return re.sub(r"^anchor_box_embed\.", "refpoint_embed.", k)
    if isinstance(model, ConditionalDETR):
        return re.sub(r"^reference_points\.", "transformer.decoder.ref_point_head.", k)
    return k  # DAB-DETR: anchor_box_embed


def detrex_aliases(name: str, model: nn.Module) -> List[str]:
    """Other names under which a detrex checkpoint may hold the same tensor."""
    out = []
    if re.match(r"^(class_embed|bbox_embed)\b", name):
        out.append("transformer.decoder." + name)
        if isinstance(model, DeformableDETR) and not model.with_box_refine:  # one head under every index
            head, rest = name.split(".0.", 1) if ".0." in name else (None, None)
            if head:
                out += [f"{p}{head}.{i}.{rest}" for i in range(1, model.decoder.num_layers)
                        for p in ("", "transformer.decoder.")]
    if ".ffns.0.layers.0.1." in name:  # PReLU registered as activation and inside layers
        out.append(name.replace(".ffns.0.layers.0.1.", ".ffns.0.activation."))
    return out


def swap_layout(key: str, tensor: Tensor) -> Tensor:
    """Our layout <-> detrex's for tensors whose layout differs (the swap is its own inverse):
    Deformable DETR's two-stage ``pos_trans`` reads the proposal's sine embedding ordered
    (x, y, w, h); ours is ordered (y, x, w, h) like every other query embedding of the package."""
    if key == "pos_trans.weight":
        q = tensor.shape[1] // 4
        return torch.cat([tensor[:, q:2 * q], tensor[:, :q], tensor[:, 2 * q:]], 1)
    return tensor


def convert_detrex_state_dict(detrex: Dict[str, Tensor], model: nn.Module
                              ) -> Tuple[Dict[str, Tensor], List[str], List[str]]:
    """Rename a detrex state dict to ``model``'s names.

    Returns ``(state_dict, unmatched, problems)``: ``unmatched`` lists detrex keys that no
    parameter of ours took (neither by name nor as a known alias); ``problems`` lists our keys
    that were not found or whose shape differs, each with the detrex name looked for.
    """
    ours, used, problems = {}, set(), []
    for key, mine in model.state_dict().items():
        name = detrex_name(key, model)
        found = [n for n in [name] + detrex_aliases(name, model) if n in detrex]
        if not found:
            problems.append(f"{key}: not in the checkpoint (looked for '{name}')")
            continue
        used.update(found)
        tensor = swap_layout(key, detrex[found[0]])
        if tuple(tensor.shape) != tuple(mine.shape):
            problems.append(f"{key}: shape {tuple(mine.shape)} but '{found[0]}' has {tuple(tensor.shape)}")
            continue
        ours[key] = tensor
    unmatched = sorted(set(detrex) - used)
    return ours, unmatched, problems
