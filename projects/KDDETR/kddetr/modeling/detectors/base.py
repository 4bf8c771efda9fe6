"""What every DETR of the package shares: input normalisation, targets, the fused decoding of
query groups, the training/eval forward and top-k inference."""
from __future__ import annotations

import copy
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, ImageList, Instances
from torch import Tensor, nn

from ..groups import DENOISING, DETECTION
from ..layers import MLP, MSDeformAttn
from ..layers.box_ops import cxcywh_to_xyxy, normalized_cxcywh
from ..layers.transfer import to_device
from ..seam import (
    BOX_LOGITS,
    DecoderOutput,
    EncoderState,
    Queries,
    QueryGroup,
    QuerySpace,
    Targets,
    fused_attention_mask,
)


class DETRBase(nn.Module):
    """Base class with the Detectron2 I/O of a DETR and the generic half of the seam.

    A detector provides ``encode``, ``default_queries`` and :meth:`embed_queries` (what its
    decoder makes of a :class:`Queries`), and the attributes ``decoder``, ``class_head``,
    ``box_head`` (a module shared by all decoder layers or a ModuleList with one per layer),
    ``criterion`` and ``denoising`` (or None). :meth:`decode`, :meth:`forward` and
    :meth:`forward_train` are the same for every family. A concrete detector also provides
    :meth:`init_detector_weights` (and ``encoder``, or its own :meth:`transformer_parts`) and calls
    :meth:`init_weights` at the end of its ``__init__`` (detrex's initialisation).

    Args:
        num_classes: K.
        pixel_mean, pixel_std: per channel, in the order of ``input_format``.
        select_box_nums_for_evaluation: detections kept per image (top-k over queries x classes).
        size_divisibility: pad the batch to a multiple of this (0 = none).
    """

    #: what a query is, so a distiller can check that teacher and student decode the same
    #: distillation points: reference boxes ``[B, N, 4]`` as inverse-sigmoid cxcywh.
    query_space: QuerySpace = BOX_LOGITS

    def __init__(self, num_classes: int, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 select_box_nums_for_evaluation: int = 300, size_divisibility: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.denoising: Optional[nn.Module] = None  # DINO's contrastive denoising groups
        self.select_box_nums_for_evaluation = select_box_nums_for_evaluation
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---- the distillation seam: the generic half -----------------------------------------------
    def encode(self, images: ImageList, padding_mask: Tensor) -> EncoderState:
        raise NotImplementedError

    def default_queries(self, state: EncoderState) -> Queries:
        raise NotImplementedError

    def embed_queries(self, queries: Queries) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """What the decoder makes of ``queries``: content ``[B, N, D]`` (the detector's default
        where ``queries.content`` is None), positions ``[B, N, D]`` or None (recomputed from the
        reference every layer), reference logits ``[B, N, 2 | 4]``."""
        raise NotImplementedError

    def decode(self, state: EncoderState, groups: Sequence[QueryGroup]) -> List[DecoderOutput]:
        """Decode all groups in one pass; returns one :class:`DecoderOutput` per group, in order.
        A group whose queries carry a ``reference`` (shared distillation points: the teacher's) is
        decoded at it instead of the reference the detector derives from the position part."""
        parts = [self.embed_queries(g.queries) for g in groups]
        parts = [p if g.queries.reference is None else (p[0], p[1], g.queries.reference.to(p[2].dtype))
                 for p, g in zip(parts, groups)]
        tgt = torch.cat([p[0] for p in parts], 1)
        pos = None if parts[0][1] is None else torch.cat([p[1] for p in parts], 1)
        ref = torch.cat([p[2] for p in parts], 1)
        mask = fused_attention_mask(groups, tgt.device)
        L = self.decoder.num_layers
        out = self.decoder(tgt, ref, pos, state, mask, _per_layer(self.class_head, L), _per_layer(self.box_head, L))
        sizes = [g.queries.num for g in groups]
        return [DecoderOutput(*parts) for parts in zip(out.logits.split(sizes, 2), out.boxes.split(sizes, 2),
                                                        out.hidden.split(sizes, 2))]

    # ---- initialisation, as detrex -----------------------------------------------------------------
    def transformer_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """The modules and parameters that detrex's ``transformer`` module holds in this family
        (the encoder and decoder; families add e.g. ``level_embed``, ``tgt_embed``, ``enc_output``)."""
        return [self.encoder, self.decoder]

    def init_weights(self) -> None:
        """Initialise as detrex does, in its order: first what detrex's transformer holds
        (:meth:`init_transformer_weights`, run when detrex builds the transformer), then the
        detector's own queries and heads (:meth:`init_detector_weights`, detrex's detector
        ``__init__``). The backbone and the neck keep their own initialisation. Depends on the
        torch RNG only; every concrete detector calls it at the end of ``__init__``."""
        self.init_transformer_weights()
        self.init_detector_weights()

    def init_transformer_weights(self) -> None:
        """xavier over the transformer's >1-D parameters, MSDeformAttn's own init (:func:`init_transformer`)."""
        init_transformer(self.transformer_parts())

    def init_detector_weights(self) -> None:
        """Queries and prediction heads, as the family's detrex detector initialises them."""
        raise NotImplementedError

    # ---- Detectron2 forward ----------------------------------------------------------------------
    def forward(self, batched_inputs: List[Dict]):
        """Training: dict of weighted losses. Eval: ``[{"instances": Instances}]`` per image."""
        images, padding_mask = self.preprocess_image(batched_inputs)
        state = self.encode(images, padding_mask)
        queries = self.default_queries(state)
        if not self.training:
            out = self.decode(state, [QueryGroup(DETECTION, queries)])[0]
            return self.inference(out, batched_inputs, state.image_sizes)
        targets = self.prepare_targets(batched_inputs)
        losses, _ = self.forward_train(state, queries, targets)
        return losses

    def forward_train(self, state: EncoderState, queries: Queries, targets, extra_groups: Sequence[QueryGroup] = ()
                      ) -> Tuple[Dict[str, Tensor], Dict[str, DecoderOutput]]:
        """Decode detection, denoising (if the detector has it) and ``extra_groups`` in one pass;
        return the detection losses and every group's output by name."""
        groups = [QueryGroup(DETECTION, queries)]
        dn = self.denoising(targets) if self.denoising is not None else None
        if dn is not None:
            groups.append(dn[0])
        groups.extend(extra_groups)
        outputs = dict(zip([g.name for g in groups], self.decode(state, groups)))
        placeholder = None
        if self.denoising is not None and dn is None:
            # no boxes to noise: keep the _dn keys and the denoising embedding in the graph (DDP)
            placeholder = self.denoising.label_embed.weight.sum() * 0.0
        losses = self.criterion(outputs[DETECTION], targets, enc=queries.aux,
                                dn=(outputs[DENOISING], dn[1]) if dn is not None else None, dn_placeholder=placeholder)
        return losses, outputs

    def preprocess_image(self, batched_inputs: List[Dict]) -> Tuple[ImageList, Tensor]:
        """Normalise and pad. Returns the ImageList and a ``[B, H, W]`` bool mask, True on padding."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, self.size_divisibility)
        B, _, H, W = images.tensor.shape
        mask = torch.ones(B, H, W, dtype=torch.bool, device=self.device)
        for i, (h, w) in enumerate(images.image_sizes):
            mask[i, :h, :w] = False
        return images, mask

    def prepare_targets(self, batched_inputs: List[Dict]) -> Targets:
        """Per image ``{"labels": [T] int64, "boxes": [T, 4] cxcywh in [0, 1]}`` on the model's device, from
        the mapped ``Instances`` (``gt_classes``, ``gt_boxes`` absolute xyxy of the input image)."""
        if any("instances" not in x for x in batched_inputs):
            raise ValueError(
                "Training needs ground truth: an input has no 'instances'. Use a dataset with "
                "annotations and a mapper with is_train=True (kddetr.data.DetrDatasetMapper)."
            )
        instances = [x["instances"] for x in batched_inputs]  # gt_boxes: absolute xyxy of the input image
        sizes = [len(inst) for inst in instances]
        # one host-to-device copy for the labels and one for the boxes of the whole batch
        labels = torch.cat([inst.gt_classes.to(torch.int64) for inst in instances]).to(self.device)
        boxes = torch.cat([inst.gt_boxes.tensor.float() for inst in instances]).to(self.device)
        return [{"labels": lab, "boxes": normalized_cxcywh(box, inst.image_size)}
                for lab, box, inst in zip(labels.split(sizes), boxes.split(sizes), instances)]

    def inference(self, output: DecoderOutput, batched_inputs: List[Dict],
                  image_sizes: List[Tuple[int, int]]) -> List[Dict[str, Instances]]:
        """Top-k over (query, class) of the last layer (:meth:`detections`), boxes rescaled to each
        original image."""
        scores, labels, boxes = self.detections(output)
        scales = to_device(torch.tensor([[w, h, w, h] for h, w in image_sizes], dtype=boxes.dtype, device="cpu"),
                           boxes.device)
        results = []
        for i, (h, w) in enumerate(image_sizes):
            r = Instances((h, w))
            r.pred_boxes = Boxes(boxes[i] * scales[i])
            r.pred_boxes.clip((h, w))
            r.scores = scores[i]
            r.pred_classes = labels[i]
            height = batched_inputs[i].get("height", h)
            width = batched_inputs[i].get("width", w)
            results.append({"instances": detector_postprocess(r, height, width)})
        return results

    def detections(self, output: DecoderOutput) -> Tuple[Tensor, Tensor, Tensor]:
        """The ``k = select_box_nums_for_evaluation`` best (query, class) pairs of the last layer.

        Returns scores ``[B, k]`` (sigmoid), labels ``[B, k]`` int64 and boxes ``[B, k, 4]`` xyxy
        relative to the input image's size (not clipped: a box may leave [0, 1]), best first. Also
        the exported graph's head (``kddetr.deploy``)."""
        logits, boxes = output.logits[-1], output.boxes[-1]
        B, Q, K = logits.shape
        k = min(self.select_box_nums_for_evaluation, Q * K)
        scores, idx = logits.sigmoid().flatten(1).topk(k, dim=1)
        query = torch.div(idx, K, rounding_mode="floor")
        labels = idx % K
        boxes = cxcywh_to_xyxy(torch.gather(boxes, 1, query[..., None].expand(-1, -1, 4)))
        return scores, labels, boxes


def downsample_mask(mask: Tensor, size: Tuple[int, int]) -> Tensor:
    """``[B, H, W]`` bool padding mask -> ``[B, h, w]`` (nearest)."""
    return F.interpolate(mask[None].float(), size=size)[0].to(torch.bool)


def valid_ratios(masks: Sequence[Tensor]) -> Tensor:
    """Per level ``[B, h, w]`` padding masks -> ``[B, L, 2]`` (w, h) share that is not padding."""
    return torch.stack([torch.stack([(~m[:, 0, :]).sum(1) / m.shape[2], (~m[:, :, 0]).sum(1) / m.shape[1]], -1)
                        for m in masks], 1)


def flatten_levels(feats: Sequence[Tensor], masks: Sequence[Tensor], poss: Optional[Sequence[Tensor]],
                   image_sizes: List[Tuple[int, int]]) -> Tuple[Tensor, Optional[Tensor], EncoderState]:
    """Flatten per-level ``[B, D, h, w]`` features, masks and position embeddings (or None).

    Returns ``src`` ``[B, S, D]``, ``pos`` ``[B, S, D]`` (or None) and an :class:`EncoderState` whose memory
    and features are ``src`` (the caller replaces the memory by the encoder output)."""
    shapes = [(int(f.shape[-2]), int(f.shape[-1])) for f in feats]
    src = torch.cat([f.flatten(2).transpose(1, 2) for f in feats], 1)
    pos = torch.cat([p.flatten(2).transpose(1, 2) for p in poss], 1) if poss is not None else None
    flat_mask = torch.cat([m.flatten(1) for m in masks], 1)
    shapes_t = to_device(torch.as_tensor(shapes, dtype=torch.long, device="cpu"), src.device)
    starts = torch.cat([shapes_t.new_zeros(1), shapes_t.prod(1).cumsum(0)[:-1]])
    state = EncoderState(memory=src, padding_mask=flat_mask, spatial_shapes=shapes, spatial_shapes_t=shapes_t,
                         level_start_index=starts, valid_ratios=valid_ratios(masks).to(src.dtype),
                         image_sizes=image_sizes, features=src)
    return src, pos, state


#: focal-loss prior of every class head: foreground probability 0.01 at initialisation
PRIOR_PROB = 0.01


def init_transformer(parts: Iterable[Union[nn.Module, nn.Parameter]]) -> None:
    """detrex's ``Transformer.init_weights`` over ``parts`` (what detrex's ``transformer`` module of
    the family holds): ``xavier_uniform_`` on every parameter of more than one dimension (linear
    and attention weights, ``tgt_embed``, ``level_embeds``...; biases, norms and PReLU slopes keep
    their initialisation), then every :class:`MSDeformAttn` back to its own initialisation (zero
    offset and attention weights, offset biases on the direction grid, xavier projections)."""
    parts = list(parts)
    seen = set()
    for part in parts:
        for p in [part] if isinstance(part, nn.Parameter) else part.parameters():
            if id(p) not in seen and p.dim() > 1:
                seen.add(id(p))
                nn.init.xavier_uniform_(p)
    for part in parts:
        if isinstance(part, nn.Module):
            for m in part.modules():
                if isinstance(m, MSDeformAttn):
                    m.reset_parameters()


def init_prediction_heads(class_heads: Sequence[nn.Linear], box_heads: Sequence[MLP],
                          first_size_bias: float = 0.0) -> None:
    """detrex's prediction heads: one class head and one box head with PyTorch's default
    initialisation, the class bias at the focal prior (``-log(99)``) and the box head's last layer
    zero (every box starts on its reference); every other head of the lists (one per decoder
    layer, the encoder's proposal head) a copy of them, as detrex deep-copies one prototype. Then
    the first box head's (w, h) bias is set to ``first_size_bias`` (-2 in Deformable DETR and
    DAB-Deformable DETR: a first layer's box starts at ``sigmoid(-2)`` = 0.12 of its reference's
    size logit; the later layers refine from there). A module listed several times (one head
    shared by all layers) is initialised once."""
    class_heads, box_heads = _unique(class_heads), _unique(box_heads)
    proto_class, proto_box = class_heads[0], box_heads[0]
    proto_class.reset_parameters()
    for layer in proto_box.layers:
        layer.reset_parameters()
    with torch.no_grad():
        proto_class.bias.fill_(-math.log((1 - PRIOR_PROB) / PRIOR_PROB))
        proto_box.layers[-1].weight.zero_()
        proto_box.layers[-1].bias.zero_()
        for heads in (class_heads, box_heads):
            for head in heads[1:]:
                for p, q in zip(head.parameters(), heads[0].parameters()):
                    p.copy_(q)
        proto_box.layers[-1].bias[2:] = first_size_bias


def _unique(modules: Sequence[nn.Module]) -> List[nn.Module]:
    """``modules`` without repeats, in order."""
    out: List[nn.Module] = []
    for m in modules:
        if all(m is not o for o in out):
            out.append(m)
    return out


def layer_heads(head: nn.Module, num_layers: int, per_layer: bool) -> nn.Module:
    """One head shared by all layers, or independent copies (box refinement trains one per layer)."""
    return nn.ModuleList(copy.deepcopy(head) for _ in range(num_layers)) if per_layer else head


def layers_of(head: nn.Module) -> List[nn.Module]:
    """The distinct heads of :func:`layer_heads`' result, first layer first."""
    return list(head) if isinstance(head, nn.ModuleList) else [head]


def _per_layer(head: nn.Module, num_layers: int) -> Sequence[nn.Module]:
    """A head per decoder layer: the ModuleList itself, or one shared module repeated."""
    if isinstance(head, nn.ModuleList):
        if len(head) != num_layers:
            raise ValueError(f"{len(head)} per-layer heads for {num_layers} decoder layers")
        return head
    return [head] * num_layers
