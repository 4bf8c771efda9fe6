"""DINO: DETR with improved deNoising anchOr boxes (Zhang et al., 2022), Detectron2 style.

Two-stage mixed query selection, contrastive denoising, look-forward-twice box
refinement, multi-scale deformable encoder/decoder, focal classification. Sizes follow
detrex's ``dino_r50_4scale_12ep`` and are all constructor arguments.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..criterion import SetCriterion
from ..denoising import ContrastiveDenoising
from ..layers import (MLP, DeformableDecoderLayer, DeformableEncoder, PositionEmbeddingSine, box_sine_embedding,
                      inverse_sigmoid, pixel_centers)
from ..neck import ChannelMapper
from ..seam import DecoderOutput, EncoderState, Queries, QueryGroup, fused_attention_mask
from .base import DETRBase, downsample_mask


class DINODecoder(nn.Module):
    """Deformable decoder with box-conditioned query positions and look-forward-twice refinement.

    Args:
        num_layers, embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points: sizes.
    """

    def __init__(self, num_layers: int = 6, embed_dim: int = 256, num_heads: int = 8, ffn_dim: int = 2048,
                 dropout: float = 0.0, num_levels: int = 4, num_points: int = 4):
        super().__init__()
        self.embed_dim = embed_dim
        self.layers = nn.ModuleList(
            DeformableDecoderLayer(embed_dim, num_heads, ffn_dim, dropout, num_levels, num_points)
            for _ in range(num_layers)
        )
        self.ref_point_head = MLP(2 * embed_dim, embed_dim, embed_dim, 2)
        self.norm = nn.LayerNorm(embed_dim)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(self, tgt: Tensor, ref_logits: Tensor, state: EncoderState, attn_mask: Optional[Tensor],
                class_head: nn.Module, box_head: nn.Module) -> DecoderOutput:
        """``tgt`` ``[B, N, D]`` content, ``ref_logits`` ``[B, N, 4]`` -> per-layer predictions."""
        valid = torch.cat([state.valid_ratios, state.valid_ratios], -1)[:, None]  # [B, 1, L, 4]
        ref = ref_logits.sigmoid()
        prev_logits = ref_logits  # logit of the previous *undetached* box (look forward twice)
        hidden, boxes, logits = [], [], []
        for layer in self.layers:
            ref_input = ref[:, :, None] * valid
            query_pos = self.ref_point_head(box_sine_embedding(ref_input[:, :, 0], self.embed_dim // 2))
            tgt = layer(tgt, query_pos, ref_input, state.memory, state.spatial_shapes, state.spatial_shapes_t,
                        state.padding_mask, attn_mask)
            h = self.norm(tgt)
            box = (box_head(h) + prev_logits).sigmoid()
            hidden.append(h)
            boxes.append(box)
            logits.append(class_head(h))
            prev_logits = inverse_sigmoid(box)
            ref = box.detach()  # the next layer's reference does not back-propagate
        return DecoderOutput(logits=torch.stack(logits), boxes=torch.stack(boxes), hidden=torch.stack(hidden))


class DINO(DETRBase):
    """DINO detector.

    Args:
        backbone: a Detectron2 backbone (``output_shape()``, dict of features).
        neck: :class:`ChannelMapper` to ``num_levels`` levels of ``embed_dim``.
        position_embedding: :class:`PositionEmbeddingSine` with ``embed_dim // 2`` features.
        encoder: :class:`DeformableEncoder`.
        decoder: :class:`DINODecoder`.
        criterion: :class:`SetCriterion`.
        num_classes: K.
        num_queries: two-stage proposals decoded per image (DINO: 900).
        dn_number, label_noise_ratio, box_noise_scale: contrastive denoising (100, 0.5, 1.0).
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: ChannelMapper,
        position_embedding: PositionEmbeddingSine,
        encoder: DeformableEncoder,
        decoder: DINODecoder,
        criterion: SetCriterion,
        num_classes: int = 80,
        num_queries: int = 900,
        embed_dim: int = 256,
        num_levels: int = 4,
        dn_number: int = 100,
        label_noise_ratio: float = 0.5,
        box_noise_scale: float = 1.0,
        pixel_mean: Sequence[float] = (123.675, 116.280, 103.530),
        pixel_std: Sequence[float] = (58.395, 57.120, 57.375),
        select_box_nums_for_evaluation: int = 300,
        size_divisibility: int = 0,
        input_format: str = "RGB",
    ):
        super().__init__(num_classes, pixel_mean, pixel_std, select_box_nums_for_evaluation, size_divisibility)
        self.backbone, self.neck, self.position_embedding = backbone, neck, position_embedding
        self.encoder, self.decoder, self.criterion = encoder, decoder, criterion
        self.num_queries, self.embed_dim, self.input_format = num_queries, embed_dim, input_format
        self.level_embed = nn.Parameter(torch.empty(num_levels, embed_dim))
        # Two-stage proposal head on the encoder memory (separate from the decoder heads).
        self.enc_output = nn.Linear(embed_dim, embed_dim)
        self.enc_output_norm = nn.LayerNorm(embed_dim)
        self.enc_class_head = nn.Linear(embed_dim, num_classes)
        self.enc_box_head = MLP(embed_dim, embed_dim, 4, 3)
        # Decoder heads, shared by every decoder layer (DINO's default).
        self.class_head = nn.Linear(embed_dim, num_classes)
        self.box_head = MLP(embed_dim, embed_dim, 4, 3)
        self.tgt_embed = nn.Embedding(num_queries, embed_dim)  # static content queries
        self.denoising = ContrastiveDenoising(num_classes, embed_dim, dn_number, label_noise_ratio, box_noise_scale)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.normal_(self.level_embed)
        prior_bias = -math.log((1 - 0.01) / 0.01)  # initial foreground probability 0.01
        for head in (self.class_head, self.enc_class_head):
            nn.init.constant_(head.bias, prior_bias)
        for head in (self.box_head, self.enc_box_head):
            nn.init.constant_(head.layers[-1].weight, 0.0)
            nn.init.constant_(head.layers[-1].bias, 0.0)

    # ---- the distillation seam -------------------------------------------------------------
    def encode(self, images, padding_mask: Tensor) -> EncoderState:
        """Backbone, neck and deformable encoder.

        ``images`` an ImageList ``[B, 3, H, W]``; ``padding_mask`` ``[B, H, W]`` True on padding.
        """
        feats = self.neck(self.backbone(images.tensor))
        srcs, masks, poss, shapes = [], [], [], []
        for lvl, feat in enumerate(feats):
            h, w = feat.shape[-2:]
            mask = downsample_mask(padding_mask, (h, w))
            pos = self.position_embedding(mask).to(feat.dtype)
            srcs.append(feat.flatten(2).transpose(1, 2))
            poss.append(pos.flatten(2).transpose(1, 2) + self.level_embed[lvl])
            masks.append(mask)
            shapes.append((int(h), int(w)))
        valid_ratios = torch.stack(
            [torch.stack([(~m[:, 0, :]).sum(1) / m.shape[2], (~m[:, :, 0]).sum(1) / m.shape[1]], -1) for m in masks], 1
        ).to(srcs[0].dtype)
        src, pos = torch.cat(srcs, 1), torch.cat(poss, 1)
        flat_mask = torch.cat([m.flatten(1) for m in masks], 1)
        shapes_t = torch.as_tensor(shapes, dtype=torch.long, device=src.device)
        starts = torch.cat([shapes_t.new_zeros(1), shapes_t.prod(1).cumsum(0)[:-1]])
        memory = self.encoder(src, pos, shapes, shapes_t, valid_ratios, flat_mask)
        return EncoderState(memory=memory, padding_mask=flat_mask, spatial_shapes=shapes, spatial_shapes_t=shapes_t,
                            level_start_index=starts, valid_ratios=valid_ratios, image_sizes=list(images.image_sizes))

    def default_queries(self, state: EncoderState) -> Queries:
        """Mixed query selection: top-k encoder proposals give the anchor boxes, content is learned.

        ``aux`` carries the selected proposals' ``logits`` ``[B, N, K]`` and ``boxes``
        ``[B, N, 4]`` for the encoder loss.
        """
        proposals, valid = self._grid_proposals(state)
        memory = state.memory.masked_fill(~valid[..., None], 0.0)
        memory = self.enc_output_norm(self.enc_output(memory))
        logits = self.enc_class_head(memory)
        boxes = self.enc_box_head(memory) + proposals
        k = min(self.num_queries, memory.shape[1])
        score = logits.max(-1)[0].masked_fill(~valid, float("-inf"))
        idx = score.topk(k, dim=1)[1]
        top_boxes = torch.gather(boxes, 1, idx[..., None].expand(-1, -1, 4))
        top_logits = torch.gather(logits, 1, idx[..., None].expand(-1, -1, logits.shape[-1]))
        content = self.tgt_embed.weight[:k][None].expand(memory.shape[0], -1, -1)
        return Queries(boxes=top_boxes.detach(), content=content,
                       aux={"logits": top_logits, "boxes": top_boxes.sigmoid()})

    def default_content(self, batch: int, num: int) -> Tensor:
        """Content vectors for queries that bring none: the learned content queries, cycled."""
        w = self.tgt_embed.weight
        idx = torch.arange(num, device=w.device) % w.shape[0]
        return w[idx][None].expand(batch, -1, -1)

    def decode(self, state: EncoderState, groups: Sequence[QueryGroup]) -> List[DecoderOutput]:
        """Decode all groups in one pass; returns one :class:`DecoderOutput` per group, in order."""
        B = state.memory.shape[0]
        contents = [g.queries.content if g.queries.content is not None else self.default_content(B, g.queries.num)
                    for g in groups]
        tgt = torch.cat(contents, 1)
        ref = torch.cat([g.queries.boxes for g in groups], 1)
        mask = fused_attention_mask(groups, tgt.device)
        out = self.decoder(tgt, ref, state, mask, self.class_head, self.box_head)
        sizes = [g.queries.num for g in groups]
        return [DecoderOutput(*parts) for parts in zip(out.logits.split(sizes, 2), out.boxes.split(sizes, 2),
                                                        out.hidden.split(sizes, 2))]

    # ---- Detectron2 forward ----------------------------------------------------------------
    def forward(self, batched_inputs: List[Dict]):
        """Training: dict of weighted losses. Eval: ``[{"instances": Instances}]`` per image."""
        images, padding_mask = self.preprocess_image(batched_inputs)
        state = self.encode(images, padding_mask)
        queries = self.default_queries(state)
        if not self.training:
            out = self.decode(state, [QueryGroup("det", queries)])[0]
            return self.inference(out, batched_inputs, state.image_sizes)
        targets = self.prepare_targets(batched_inputs)
        losses, _ = self.forward_train(state, queries, targets)
        return losses

    def forward_train(self, state: EncoderState, queries: Queries, targets, extra_groups: Sequence[QueryGroup] = ()
                      ) -> Tuple[Dict[str, Tensor], Dict[str, DecoderOutput]]:
        """Decode detection, denoising and ``extra_groups`` in one pass; return the detection
        losses and every group's output by name."""
        groups = [QueryGroup("det", queries)]
        dn = self.denoising(targets)
        if dn is not None:
            groups.append(dn[0])
        groups.extend(extra_groups)
        outputs = dict(zip([g.name for g in groups], self.decode(state, groups)))
        losses = self.criterion(
            outputs["det"], targets, enc=queries.aux,
            dn=(outputs["dn"], dn[1]) if dn is not None else None,
            # no boxes to noise: keep the _dn keys and the denoising embedding in the graph (DDP)
            dn_placeholder=self.denoising.label_embed.weight.sum() * 0.0 if dn is None else None,
        )
        return losses, outputs

    def _grid_proposals(self, state: EncoderState) -> Tuple[Tensor, Tensor]:
        """One box per memory position: its pixel centre and a level-dependent size (0.05 * 2^l).

        Returns logits ``[B, S, 4]`` (0 where invalid) and a validity mask ``[B, S]``.
        """
        centers = pixel_centers(state.spatial_shapes, state.valid_ratios)
        sizes = torch.cat([torch.full((h * w,), 0.05 * 2.0 ** lvl, dtype=centers.dtype, device=centers.device)
                           for lvl, (h, w) in enumerate(state.spatial_shapes)])
        props = torch.cat([centers, sizes[None, :, None].expand(centers.shape[0], -1, 2)], -1)
        valid = ((props > 0.01) & (props < 0.99)).all(-1) & ~state.padding_mask
        logits = torch.log(props / (1 - props)).masked_fill(~valid[..., None], 0.0)
        return logits, valid
