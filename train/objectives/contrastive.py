"""Video–utterance contrastive learning (CVCL-like), and its joint form with VideoMAE.

Pairs: each clip with the utterance it was drawn around (`ClipLoader(anchor="utterance")`, data.anchor);
a clip without one takes no part in the loss. Towers: the video ViT, mean-pooled over all its tubelets,
and a small text encoder over the corpus's own vocabulary; each projected linearly into one embedding
space and L2-normalized. Loss: symmetric InfoNCE with a learned temperature (initially 0.07, the logit
scale clamped at 100, as CLIP), where another clip with the same utterance is not a negative. Under
torchrun the embeddings of every rank are gathered (the local ones keep their gradients), each rank
computes the loss over the whole global batch, and the backward is scaled by the world size, so that DDP's
average of the ranks' gradients is the gradient of that loss: the step equals one process holding the
concatenated batch.

Control (`shuffle_pairs`): each clip is paired with the utterance of the clip at another position of the
epoch, a keyed permutation of the epoch's positions by the seed, as CVCL's shuffled control; the clips,
their order and augmentation are unchanged, and each utterance is still used once per epoch.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from ..flops import block_flops, linear_flops
from ..models.text import TextEncoder
from ..models.vit import VideoViT
from ..vocab import Vocabulary
from .base import Objective, ObjectiveOutput, register_objective
from .videomae import VideoMAE

__all__ = ["Contrastive", "VideoMAEContrastive", "symmetric_info_nce", "gather_with_local_grad"]

_SHUFFLE_KEY = 0x3C6EF372FE94F82B


def symmetric_info_nce(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, text_keys: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid pairs of the two cross-entropies (clip -> its utterance among all utterances, and
    utterance -> its clip among all clips) of `logit_scale * cos`. Columns of invalid pairs, and of other
    pairs with the same text key (the same utterance), are no negatives. 0 (with a graph) when no pair is
    valid."""
    n = video.shape[0]
    logits = logit_scale * video.float() @ text.float().t()
    same = text_keys[:, None] == text_keys[None, :]
    blocked = (same & ~torch.eye(n, dtype=torch.bool, device=video.device)) | ~valid[None, :]
    target = torch.arange(n, device=video.device)
    rows = valid.nonzero().squeeze(1)
    if rows.numel() == 0:
        return logits.sum() * 0.0
    v2t = F.cross_entropy(logits.masked_fill(blocked, float("-inf"))[rows], target[rows])
    t2v = F.cross_entropy(logits.t().masked_fill(blocked, float("-inf"))[rows], target[rows])
    return 0.5 * (v2t + t2v)


def gather_with_local_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` concatenated in rank order; this rank's part keeps its autograd graph."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


def _text_keys(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One int64 per utterance, equal for equal word sequences (a polynomial hash of the ids)."""
    key = torch.zeros(ids.shape[0], dtype=torch.int64, device=ids.device)
    for j in range(ids.shape[1]):
        key = torch.where(mask[:, j], key * 1000003 + ids[:, j] + 1, key)
    return key


@register_objective("contrastive")
class Contrastive(Objective):
    """Contrastive video–utterance objective around a `VideoViT` (see the module docstring).

    Args:
        encoder: the video ViT. vocabulary: the words of the corpus.
        embed_dim: width of the shared embedding space. text_dim: the text encoder's width.
        text_encoder: "mean" (mean of word embeddings) or "transformer" (2 blocks, `text_depth`).
        temperature: initial softmax temperature (learned); max_logit_scale clamps 1 / temperature.
        shuffle_pairs: the shuffled-pairs control. min_count, max_vocab: how the trainer builds the
            vocabulary (kept here so that a checkpoint names them).
    """

    needs_vocabulary = True
    encoder: VideoViT

    def __init__(self, encoder: VideoViT, vocabulary: Vocabulary, embed_dim: int = 256, text_dim: int = 256,
                 text_encoder: Literal["mean", "transformer"] = "mean", text_depth: int = 2, text_heads: int = 4,
                 max_words: int = 32, temperature: float = 0.07, max_logit_scale: float = 100.0,
                 shuffle_pairs: bool = False, min_count: int = 1, max_vocab: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if not isinstance(encoder, VideoViT):
            raise TypeError(f"Contrastive: the encoder must be a VideoViT, got {type(encoder).__name__}")
        if not 0 < temperature < 1:
            raise ValueError(f"Contrastive: temperature must be in (0, 1), got {temperature}")
        self.encoder, self.vocabulary, self.seed = encoder, vocabulary, seed
        self.shuffle_pairs, self.max_words, self.max_logit_scale = shuffle_pairs, max_words, max_logit_scale
        self.text = TextEncoder(len(vocabulary), text_dim, text_encoder, text_depth, text_heads, max_words,
                                attention_backend=encoder.config["attention_backend"])
        self.video_proj = nn.Linear(encoder.embed_dim, embed_dim, bias=False)
        self.text_proj = nn.Linear(text_dim, embed_dim, bias=False)
        for proj in (self.video_proj, self.text_proj):
            nn.init.normal_(proj.weight, std=proj.in_features ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.embed_dim = embed_dim

    # ---------------------------------------------------------------------------------------- inputs
    def pair_texts(self, batch: Any, loader: Any) -> list[str | None]:
        """The utterance each clip is paired with: its own, or under `shuffle_pairs` the one of the clip at
        a keyed permutation of its epoch position."""
        if not self.shuffle_pairs:
            return list(batch.anchor_text)
        from babyfast.loader.plan import ClipPlan

        n = loader.plan.num_candidates
        perm = ClipPlan(np.array([n], np.int64), None, span=1, stride=1, seed=(self.seed ^ _SHUFFLE_KEY) % 2**64)
        _, partner = perm.at(int(batch.epoch), batch.position.numpy())
        return loader.anchor_texts(int(batch.epoch), partner)

    def inputs(self, batch: Any, loader: Any) -> dict[str, Any]:
        texts = self.pair_texts(batch, loader)
        ids, mask = self.vocabulary.encode(texts, self.max_words)
        valid = torch.tensor([t is not None and any(w != 1 for w in self.vocabulary.ids(t)) for t in texts])
        return {"video": batch.video, "text_ids": ids, "text_mask": mask, "valid": valid}

    # --------------------------------------------------------------------------------------- towers
    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        """L2-normalized clip embeddings `[B, embed_dim]` (mean of the encoder's tokens, projected)."""
        return F.normalize(self.video_proj(self.encoder(video).mean(1)).float(), dim=-1)

    def embed_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L2-normalized utterance embeddings `[B, embed_dim]`."""
        return F.normalize(self.text_proj(self.text(ids, mask)).float(), dim=-1)

    def forward(self, batch: dict[str, Any], step: int, offset: int = 0,  # type: ignore[override]
                total: int | None = None) -> ObjectiveOutput:
        video = gather_with_local_grad(self.embed_video(batch["video"]))
        text = gather_with_local_grad(self.embed_text(batch["text_ids"], batch["text_mask"]))
        device = video.device
        keys = gather_with_local_grad(_text_keys(batch["text_ids"].to(device), batch["text_mask"].to(device)))
        valid = gather_with_local_grad(batch["valid"].to(device))
        scale = self.logit_scale.clamp(0.0, math.log(self.max_logit_scale)).exp()
        loss = symmetric_info_nce(video, text, scale, keys, valid)
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        return ObjectiveOutput(loss=loss, metrics={"temperature": 1.0 / scale.detach(), "pairs": valid.sum().float()},
                               backward=loss * world if world > 1 else None)

    # ----------------------------------------------------------------------------------------- sizes
    def tokens_per_clip(self, clip_shape: tuple[int, int, int]) -> tuple[int, int]:
        t, h, w = self.encoder.grid((1, *clip_shape, 3))
        return t * h * w, t * h * w

    def flops_per_clip(self, clip_shape: tuple[int, int, int]) -> float:
        """Video tower on every tubelet and its projection; the text tower at `max_words` (an upper bound);
        the similarity logits are left out (they grow with the batch, and are small)."""
        n, _ = self.tokens_per_clip(clip_shape)
        enc = self.encoder
        tt, p, _ = enc.tubelet
        d, r = enc.embed_dim, enc.config["mlp_ratio"]
        video = linear_flops(n, 3 * tt * p * p, d) + len(enc.blocks) * block_flops(n, d, r) \
            + linear_flops(1, d, self.embed_dim)
        blocks = getattr(self.text, "blocks", [])
        text = len(blocks) * block_flops(self.max_words, self.text.dim, 4.0) \
            + linear_flops(1, self.text.dim, self.embed_dim)
        return video + text

    def no_weight_decay(self) -> set[str]:
        return {"logit_scale", "pos"}


def _sharing_encoder(part: Objective) -> Objective:
    """`part` uses the joint objective's encoder without registering it a second time (its weights are
    saved once, under "encoder.", where `load_encoder` finds every objective's)."""
    encoder = part._modules.pop("encoder")
    object.__setattr__(part, "encoder", encoder)
    return part


@register_objective("videomae_contrastive")
class VideoMAEContrastive(Objective):
    """VideoMAE and the contrastive objective on the same clips, one encoder: loss = videomae + weight *
    contrastive. Its own section has `weight`; the `videomae` and `contrastive` sections configure the
    parts."""

    needs_vocabulary = True
    extra_sections = ("videomae", "contrastive")

    def __init__(self, encoder: VideoViT, vocabulary: Vocabulary, videomae: dict[str, Any], contrastive: dict[str, Any],
                 weight: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.encoder, self.weight = encoder, weight
        self.mae = _sharing_encoder(VideoMAE(encoder, **videomae, seed=seed))
        self.contrastive = _sharing_encoder(Contrastive(encoder, vocabulary, **contrastive, seed=seed))

    def inputs(self, batch: Any, loader: Any) -> dict[str, Any]:
        return self.contrastive.inputs(batch, loader)

    def forward(self, batch: dict[str, Any], step: int, offset: int = 0,  # type: ignore[override]
                total: int | None = None) -> ObjectiveOutput:
        mae = self.mae(batch, step, offset, total)
        con = self.contrastive(batch, step, offset, total)
        loss = mae.loss + self.weight * con.loss
        return ObjectiveOutput(loss=loss, metrics={"videomae": mae.loss.detach(), "contrastive": con.loss.detach(),
                                                   **con.metrics},
                               backward=mae.to_differentiate + self.weight * con.to_differentiate)

    def tokens_per_clip(self, clip_shape: tuple[int, int, int]) -> tuple[int, int]:
        n, vis = self.mae.tokens_per_clip(clip_shape)
        return n, vis + n  # the encoder runs on the visible tubelets and on the whole clip

    def flops_per_clip(self, clip_shape: tuple[int, int, int]) -> float:
        return self.mae.flops_per_clip(clip_shape) + self.contrastive.flops_per_clip(clip_shape)

    def no_weight_decay(self) -> set[str]:
        return self.mae.no_weight_decay() | self.contrastive.no_weight_decay()
