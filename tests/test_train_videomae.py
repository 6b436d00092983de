"""VideoMAE: tube masks, pixel targets against an independent computation, the encoder sees only visible
tubelets, the FLOP formula against torch's FLOP counter, and the loss falls when overfitting a batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from _media import scene

from babyfast.train.models import create_model
from babyfast.train.objectives import (TubeMaskSampler, VideoMAE, create_objective, list_objectives, pixel_targets,
                                       unpatchify)


def tiny_objective(mask_ratio: float = 0.75, attention: str = "sdpa") -> VideoMAE:
    encoder = create_model("vit_tiny", embed_dim=64, depth=2, num_heads=2, attention_backend=attention,
                           patchify_backend="torch")
    return VideoMAE(encoder, mask_ratio=mask_ratio, decoder_dim=32, decoder_depth=1)


def clips(b: int = 2, t: int = 4, h: int = 32, w: int = 32) -> torch.Tensor:
    """Smooth moving pictures (learnable, unlike noise)."""
    frames = [[scene(i * 7 + k, h, w) for k in range(t)] for i in range(b)]
    return torch.from_numpy(np.stack(frames))


def test_tube_masks_count_cover_repeat_and_are_seeded_by_step() -> None:
    s = TubeMaskSampler((4, 7, 7), ratio=0.9, seed=3)
    assert (s.masked_per_slice, s.num_visible, s.num_masked) == (44, 20, 176)  # int(0.9 * 49), as VideoMAE
    m = s.sample(step=5, batch=6)
    assert m.visible.shape == (6, 20) and m.masked.shape == (6, 176)
    for vis, msk in zip(m.visible, m.masked):
        assert sorted(vis.tolist() + msk.tolist()) == list(range(196))
        spatial = (vis % 49).view(4, 5)
        assert (spatial == spatial[0]).all(), "a tube mask is the same at every time slice"
        assert ((vis // 49).view(4, 5) == torch.arange(4)[:, None]).all()
    again = s.sample(step=5, batch=6)
    assert torch.equal(m.visible, again.visible)
    assert not torch.equal(m.visible, s.sample(step=6, batch=6).visible)
    assert not torch.equal(m.visible, TubeMaskSampler((4, 7, 7), 0.9, seed=4).sample(5, 6).visible)
    # a rank's or micro-batch's slice of the global batch is that slice of the whole batch's masks
    part = s.sample(step=5, batch=2, offset=3, total=6)
    assert torch.equal(part.visible, m.visible[3:5])
    with pytest.raises(ValueError, match="outside a global batch"):
        s.sample(step=5, batch=4, offset=3, total=6)
    with pytest.raises(ValueError, match="mask ratio"):
        TubeMaskSampler((4, 7, 7), ratio=1.0)


def test_pixel_targets_equal_an_independent_computation() -> None:
    video = clips(2, 4, 32, 48)  # tubelets (2, 2, 3)
    index = torch.tensor([[0, 5, 7], [11, 2, 3]])
    got = pixel_targets(video, (2, 16, 16), index, normalize=True, backend="torch")
    v = video.numpy().astype(np.float64) / 255.0
    for b in range(2):
        for j, tub in enumerate(index[b].tolist()):
            t, rest = divmod(tub, 6)
            r, c = divmod(rest, 3)
            block = v[b, 2 * t:2 * t + 2, 16 * r:16 * r + 16, 16 * c:16 * c + 16]  # (dt, dh, dw, channel)
            per_channel = block.transpose(3, 0, 1, 2).reshape(3, -1)  # patchify's (channel, dt, dh, dw) order
            want = (per_channel - per_channel.mean(1, keepdims=True)) / (per_channel.std(1, ddof=1, keepdims=True) + 1e-6)
            np.testing.assert_allclose(got[b, j].numpy(), want.reshape(-1), atol=2e-4)
    raw = pixel_targets(video, (2, 16, 16), index, normalize=False, backend="torch")
    assert raw.min() >= 0 and raw.max() <= 1


def test_encoder_sees_only_visible_tubelets_and_the_loss_only_masked_ones() -> None:
    torch.manual_seed(0)
    obj = tiny_objective().eval()
    video = clips()
    mask = obj.sampler(obj.encoder.grid(video.shape)).sample(step=0, batch=2)
    changed = video.clone()
    for b in range(2):  # repaint one masked tubelet of each clip
        t, rest = divmod(int(mask.masked[b, 0]), 4)
        r, c = divmod(rest, 2)
        changed[b, 2 * t:2 * t + 2, 16 * r:16 * r + 16, 16 * c:16 * c + 16] = 255 - changed[b, 2 * t:2 * t + 2, 16 * r:16 * r + 16, 16 * c:16 * c + 16]
    with torch.no_grad():
        torch.testing.assert_close(obj.encoder(changed, visible=mask.visible), obj.encoder(video, visible=mask.visible))
        torch.testing.assert_close(obj.reconstruct(changed, mask.visible, mask.masked),
                                   obj.reconstruct(video, mask.visible, mask.masked))
        assert obj({"video": changed}, step=0).loss != obj({"video": video}, step=0).loss


def test_flop_formula_equals_torchs_flop_counter() -> None:
    # "math" attention: its matmuls go through the dispatcher, where the counter sees them (it does not
    # count the CPU flash kernel that "sdpa" picks)
    obj = tiny_objective(mask_ratio=0.75, attention="math")
    video = clips(3, 4, 64, 48)  # 2 x 4 x 3 = 24 tubelets; int(0.75 * 12) = 9 of 12 masked per slice
    counter = FlopCounterMode(display=False)
    with counter:
        obj({"video": video}, step=0)
    assert counter.get_total_flops() == pytest.approx(3 * obj.flops_per_clip((4, 64, 48)), rel=1e-9)
    assert obj.tokens_per_clip((4, 64, 48)) == (24, 6)


def test_loss_falls_when_overfitting_one_batch() -> None:
    torch.manual_seed(0)
    obj = tiny_objective()
    video = clips()
    opt = torch.optim.AdamW(obj.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        out = obj({"video": video}, step=0)  # the same masks every step: a fixed problem to memorize
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_unpatchify_inverts_patchify() -> None:
    video = clips(b=2, t=4, h=32, w=48)
    grid, tubelet = (2, 2, 3), (2, 16, 16)
    every = torch.arange(12).expand(2, 12)
    tokens = pixel_targets(video, tubelet, every, normalize=False, backend="torch")
    assert torch.equal((unpatchify(tokens, grid, tubelet) * 255).round().to(torch.uint8), video)
    with pytest.raises(ValueError, match="do not fit grid"):
        unpatchify(tokens[:, 1:], grid, tubelet)


def test_reconstruction_masks_as_training_and_keeps_the_visible_tubelets() -> None:
    torch.manual_seed(0)
    obj = tiny_objective().eval()
    video = clips(b=2)
    rec = obj.reconstruction(video, step=3)
    grid = obj.encoder.grid(video.shape)
    masked = obj.sampler(grid).sample(3, 2).masked
    assert rec.mask.shape == (2, *grid) and rec.mask.dtype == torch.bool
    assert torch.equal(rec.mask.flatten(1).nonzero()[:, 1].view(2, -1), masked)  # the masks of training step 3
    t, p, _ = obj.encoder.tubelet
    hidden = rec.mask.repeat_interleave(t, 1).repeat_interleave(p, 2).repeat_interleave(p, 3)  # [B, T, H, W]
    for picture in (rec.original, rec.masked, rec.reconstructed):
        assert picture.shape == video.shape and picture.dtype == torch.uint8
    assert torch.equal(rec.original, video)
    assert torch.equal(rec.masked[~hidden], video[~hidden]) and torch.equal(rec.reconstructed[~hidden], video[~hidden])
    assert (rec.masked[hidden] == 128).all()
    assert not torch.equal(rec.reconstructed[hidden], rec.masked[hidden])
    with torch.no_grad():
        loss = obj({"video": video}, step=3).loss
    assert rec.error.shape == (2,) and torch.allclose(rec.error.mean(), loss, rtol=1e-5)


def test_registry_and_decoder_sizes() -> None:
    assert "videomae" in list_objectives()
    for name, width in (("vit_small", 192), ("vit_base", 384)):
        with torch.device("meta"):
            obj = create_objective("videomae", create_model(name, depth=1))
        assert obj.decoder_dim == width and len(obj.decoder) == 4
        assert obj.decoder[0].attn.head_dim == 64
    with pytest.raises(ValueError, match="unknown objective"):
        create_objective("simclr", create_model("vit_tiny", depth=1))
