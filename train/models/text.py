"""A small text encoder for utterances: word embeddings, mean-pooled (default), or a 2-layer transformer
over them before the pooling. Trained from scratch on the corpus's own words; nothing is downloaded."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from .vit import Block, init_weights

__all__ = ["TextEncoder"]


class TextEncoder(nn.Module):
    """`forward(ids [B, L], mask [B, L])` -> `[B, dim]`: the mean of the (contextualized) word vectors of
    each utterance, padding left out."""

    def __init__(self, vocab_size: int, dim: int = 256, kind: Literal["mean", "transformer"] = "mean",
                 depth: int = 2, num_heads: int = 4, max_words: int = 32, attention_backend: str = "auto") -> None:
        super().__init__()
        if kind not in ("mean", "transformer"):
            raise ValueError(f"TextEncoder: kind must be 'mean' or 'transformer', got {kind!r}")
        if vocab_size < 3:
            raise ValueError(f"TextEncoder: a vocabulary of {vocab_size} ids has no word (2 are padding, unknown)")
        self.kind, self.dim, self.max_words = kind, dim, max_words
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        if kind == "transformer":
            self.pos = nn.Parameter(torch.zeros(1, max_words, dim))
            nn.init.trunc_normal_(self.pos, std=0.02)
            self.blocks = nn.ModuleList(Block(dim, num_heads, backend=attention_backend) for _ in range(depth))
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            for module in (self.blocks, self.norm):
                module.apply(init_weights)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.max_words:
            raise ValueError(f"TextEncoder: {ids.shape[1]} words exceed max_words={self.max_words}")
        x = self.embed(ids)
        if self.kind == "transformer":
            x = x + self.pos[:, :ids.shape[1]].to(x.dtype)
            for block in self.blocks:
                x = block(x, mask)
            x = self.norm(x)
        weights = mask.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
