"""Frozen models for evaluation: a trained checkpoint or the same architecture with random weights, and the
features, embeddings and reconstructions the protocols read from them.

Probe stimuli are still images or short movies; a video model sees a still image as a clip of the image
repeated `clip_len` times, resized to the training size (antialiased), uint8 as the loader gives clips.
Features are the mean of the encoder's final tokens over the whole clip.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["EvalModel", "load_model", "random_init", "as_clips"]


def as_clips(stimuli: Sequence[np.ndarray], clip_len: int, size: int) -> torch.Tensor:
    """uint8 `[B, clip_len, size, size, 3]` from images `(H, W, 3)` (repeated in time) or movies `(T, H, W, 3)`
    (`clip_len` frames taken evenly from the movie)."""
    out = []
    for s in stimuli:
        x = torch.from_numpy(np.array(s) if not s.flags.writeable else np.ascontiguousarray(s))
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.shape[0] != clip_len:
            pick = torch.linspace(0, x.shape[0] - 1, clip_len).round().long() if x.shape[0] > 1 else \
                torch.zeros(clip_len, dtype=torch.long)
            x = x[pick]
        if tuple(x.shape[1:3]) != (size, size):
            y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
            x = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        out.append(x)
    return torch.stack(out)


@dataclass
class EvalModel:
    """A frozen objective (encoder and heads) with what evaluation needs to know about it."""

    name: str                  # "trained", "random-init", or a control's name
    objective: Any             # babyfast.train.objectives.Objective, eval mode
    cfg: Any                   # its babyfast.train.config.Config
    path: str | None = None
    seen: dict[str, Any] = field(default_factory=dict)  # what the checkpoint had trained on (clips, hours, ages)
    step: int = 0
    device: torch.device = torch.device("cpu")
    batch_size: int = 16
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.cfg.objective

    @property
    def contrastive(self) -> Any:
        """The contrastive part (text tower, projections), or None for VideoMAE models."""
        obj = self.objective
        return obj if obj.name == "contrastive" else getattr(obj, "contrastive", None)

    @property
    def mae(self) -> Any:
        obj = self.objective
        return obj if obj.name == "videomae" else getattr(obj, "mae", None)

    @property
    def clip_len(self) -> int:
        return int(self.cfg.data.clip_len)

    @property
    def size(self) -> int:
        return int(self.cfg.data.size)

    def _batches(self, stimuli: Sequence[np.ndarray]):
        for i in range(0, len(stimuli), self.batch_size):
            yield as_clips(stimuli[i:i + self.batch_size], self.clip_len, self.size).to(self.device)

    @torch.no_grad()
    def features(self, stimuli: Sequence[np.ndarray], keys: Sequence[str] | None = None) -> np.ndarray:
        """Mean encoder tokens `[N, D]` (float32), remembered by `keys` (e.g. file paths) if given."""
        if keys is not None and all(k in self._features for k in keys):
            return np.stack([self._features[k] for k in keys])
        out = np.concatenate([self.objective.encoder(v).mean(1).float().cpu().numpy() for v in self._batches(stimuli)])
        if keys is not None:
            self._features.update(zip(keys, out, strict=False))
        return out

    @torch.no_grad()
    def video_embeddings(self, stimuli: Sequence[np.ndarray]) -> np.ndarray:
        """The contrastive video tower's normalized embeddings `[N, E]`."""
        con = self.contrastive
        return np.concatenate([con.embed_video(v).cpu().numpy() for v in self._batches(stimuli)])

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        con = self.contrastive
        ids, mask = con.vocabulary.encode(list(texts), con.max_words)
        return con.embed_text(ids.to(self.device), mask.to(self.device)).cpu().numpy()

    @torch.no_grad()
    def prediction_error(self, movie: np.ndarray) -> np.ndarray:
        """VideoMAE's surprise along a movie: for each window of `clip_len` frames (every tubelet step), the
        error of its later half (every tubelet masked) predicted from its earlier half (visible); one value
        per window, all windows in one batch."""
        from babyfast.train.objectives.videomae import pixel_targets

        mae = self.mae
        t, clip = mae.encoder.tubelet[0], self.clip_len
        starts = range(0, max(1, len(movie) - clip + 1), t)
        video = as_clips([movie[s:s + clip] for s in starts], clip, self.size).to(self.device)
        gt, gh, gw = mae.encoder.grid(video.shape)
        keep, b = (gt // 2) * gh * gw, video.shape[0]  # the earlier half of the time slices is seen
        visible = torch.arange(keep, device=self.device).expand(b, -1)
        masked = torch.arange(keep, gt * gh * gw, device=self.device).expand(b, -1)
        pred = mae.reconstruct(video, visible, masked).float()
        target = pixel_targets(video, mae.encoder.tubelet, masked, mae.norm_pix_loss, mae.encoder.patch_embed.backend)
        return ((pred - target) ** 2).mean(dim=(1, 2)).cpu().numpy()


def _eval_objective(objective: Any, device: torch.device) -> Any:
    objective.to(device).eval()
    for p in objective.parameters():
        p.requires_grad_(False)
    return objective


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", name: str = "trained") -> EvalModel:
    """A run folder (its newest checkpoint) or a checkpoint file, frozen."""
    from babyfast.train.checkpoint import load_checkpoint, objective_from_state

    state = load_checkpoint(path)
    objective, cfg = objective_from_state(state)
    device = torch.device(device)
    return EvalModel(name, _eval_objective(objective, device), cfg, state["path"], dict(state.get("seen", {})),
                     int(state["step"]), device)


def random_init(model: EvalModel, seed: int = 0, name: str = "random-init") -> EvalModel:
    """The same architecture (and vocabulary) with freshly initialized weights: the control every score
    is compared with."""
    from babyfast.train.build import build_objective

    torch.manual_seed(seed)
    vocab = getattr(model.contrastive, "vocabulary", None) if model.contrastive is not None else None
    objective = build_objective(model.cfg, vocab)
    return EvalModel(name, _eval_objective(objective, model.device), model.cfg, None, {}, 0, model.device)
