"""Attention with separately projected content and position parts (Conditional / DAB-DETR)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transformer import FFN


def multi_head_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int, attn_mask: Optional[Tensor] = None,
                         key_padding_mask: Optional[Tensor] = None, dropout: float = 0.0) -> Tensor:
    """Scaled dot-product attention over ``num_heads`` heads (PyTorch's fused kernel).

    Args:
        q: ``[B, N, H * Dq]``; k: ``[B, S, H * Dq]``; v: ``[B, S, H * Dv]`` (Dq may differ from Dv).
        attn_mask: ``[N, S]`` bool, True where a query may *not* attend.
        key_padding_mask: ``[B, S]`` bool, True on padded keys.

    Returns:
        ``[B, N, H * Dv]``.
    """
    B, N, _ = q.shape
    S = k.shape[1]
    q = q.view(B, N, num_heads, -1).transpose(1, 2)
    k = k.view(B, S, num_heads, -1).transpose(1, 2)
    v = v.view(B, S, num_heads, -1).transpose(1, 2)
    blocked = None
    if attn_mask is not None:
        blocked = attn_mask[None, None]
    if key_padding_mask is not None:
        pad = key_padding_mask[:, None, None]
        blocked = pad if blocked is None else blocked | pad
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if blocked is None else ~blocked, dropout_p=dropout)
    return out.transpose(1, 2).reshape(B, N, -1)


class ConditionalDecoderLayer(nn.Module):
    """Conditional DETR decoder layer (also DAB-DETR's): content and position are projected
    separately; in the cross-attention each head's query is ``[content ; spatial query]`` and its
    key ``[content ; key position]``, so the spatial query only meets the key positions.

    Args:
        embed_dim, num_heads, ffn_dim, dropout: sizes.
        first: the first layer also adds the projected query position to the cross-attention
            content query (later layers rely on the spatial query alone).
        activation: of the FFN (DAB-DETR: ``"prelu"``).
    """

    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, first: bool = False,
                 activation: str = "relu"):
        super().__init__()
        self.num_heads = num_heads
        lin = lambda: nn.Linear(embed_dim, embed_dim)  # noqa: E731
        self.sa_q_content, self.sa_q_pos, self.sa_k_content, self.sa_k_pos, self.sa_v = (lin() for _ in range(5))
        self.sa_out = lin()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.ca_q_content, self.ca_k_content, self.ca_k_pos, self.ca_v = (lin() for _ in range(4))
        self.ca_q_pos = lin() if first else None
        self.ca_q_sine = lin()
        self.ca_out = lin()
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout
        self.ffn = FFN(embed_dim, ffn_dim, dropout, activation)

    def forward(self, tgt: Tensor, query_pos: Tensor, query_sine: Tensor, memory: Tensor, memory_pos: Tensor,
                memory_padding_mask: Optional[Tensor], attn_mask: Optional[Tensor]) -> Tensor:
        """
        Args:
            tgt: ``[B, N, D]`` content; query_pos: ``[B, N, D]`` query position embedding.
            query_sine: ``[B, N, D]`` (scaled) sine embedding of the reference point: the spatial query.
            memory, memory_pos: ``[B, S, D]`` encoder output and its position embedding.
            memory_padding_mask: ``[B, S]``; attn_mask: ``[N, N]`` bool, True = may not attend.
        """
        drop = self.attn_dropout if self.training else 0.0
        q = self.sa_q_content(tgt) + self.sa_q_pos(query_pos)
        k = self.sa_k_content(tgt) + self.sa_k_pos(query_pos)
        attn = multi_head_attention(q, k, self.sa_v(tgt), self.num_heads, attn_mask=attn_mask, dropout=drop)
        tgt = self.norm1(tgt + self.dropout(self.sa_out(attn)))

        B, N, D = tgt.shape
        S, H = memory.shape[1], self.num_heads
        q = self.ca_q_content(tgt)
        k = self.ca_k_content(memory)
        k_pos = self.ca_k_pos(memory_pos)
        if self.ca_q_pos is not None:
            q = q + self.ca_q_pos(query_pos)
            k = k + k_pos
        q = torch.cat([q.view(B, N, H, -1), self.ca_q_sine(query_sine).view(B, N, H, -1)], -1).flatten(2)
        k = torch.cat([k.view(B, S, H, -1), k_pos.view(B, S, H, -1)], -1).flatten(2)
        attn = multi_head_attention(q, k, self.ca_v(memory), H, key_padding_mask=memory_padding_mask, dropout=drop)
        tgt = self.norm2(tgt + self.dropout(self.ca_out(attn)))
        return self.ffn(tgt)
