"""The augmentation against an independent float64 reference: crop box, antialiased resize, flip and colour
jitter, on the CPU path (C++ colour pass + torch uint8 resize) and the torch-tensor path that runs on the GPU
(here on CPU tensors), through `transform_clips` and through ClipLoader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import zarr

from _media import make_video

import babyfast.store  # noqa: F401  (registers the store's codec with zarr)
from babyfast import _core
from babyfast.loader.augment import Augment, ClipParams, _boxes_on, _transform_torch, transform_clips
from babyfast.loader.clip_loader import ClipLoader
from babyfast.store.ingest import ingest

STRONG = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=25)
AUGMENTS = {
    "default": Augment(size=48),
    "default+colour": Augment(size=48, **STRONG),
    "crop only (no resize) + colour": Augment(size=40, scale=(40 * 40 / (72 * 96),) * 2, ratio=(1, 1), flip=0.5,
                                             **STRONG),
    "none": Augment.none(),
    "colour, no crop": Augment(size=None, flip=0.5, **STRONG),
}


def aa_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix of antialiased bilinear: a triangle filter, widened by the downscale
    factor when shrinking, at half-pixel centres, normalized over the taps that fall inside the image."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    taps = np.arange(n_in) + 0.5
    w = np.clip(1 - np.abs(taps[None] - centres[:, None]) / support, 0, None)
    return w / w.sum(1, keepdims=True)


def reference(clip: np.ndarray, box, flip: bool, colour, out_hw: tuple[int, int]) -> np.ndarray:
    """What the augmentation means, in float64 and rounded once: colour on the crop box (clamped to the
    pixel range), resize, flip."""
    y0, x0, h, w = (int(v) for v in box)
    x = clip[:, y0:y0 + h, x0:x0 + w].astype(np.float64)
    if colour is not None:
        mat, off = colour
        x = np.clip(x @ mat.T + off, 0, 255)
    if (h, w) != out_hw:
        x = np.einsum("yh,thwc,xw->tyxc", aa_weights(h, out_hw[0]), x, aa_weights(w, out_hw[1]))
    if flip:
        x = x[:, :, ::-1]
    return np.clip(np.round(x), 0, 255)


def make_clips(n: int, t: int = 4, h: int = 72, w: int = 96, seed: int = 0) -> list[np.ndarray]:
    """Clips that stress every step: noise (rounding and any misplaced pixel), gradients, and patches at
    0 and 255 that the colour jitter pushes past the pixel range (clamping before the resize)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    clips = []
    for _ in range(n):
        base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], -1)
        c = np.clip(base[None] + rng.normal(0, 40, (t, h, w, 3)), 0, 255)
        c[:, h // 4:h // 2, w // 5:w // 2] = 255
        c[:, h // 2:3 * h // 4, w // 2:4 * w // 5] = 0
        clips.append(np.round(c).astype(np.uint8))
    return clips


def out_size(aug: Augment, clips) -> tuple[int, int]:
    return (aug.size, aug.size) if aug.size is not None else tuple(clips[0].shape[1:3])


def check_against_reference(video: torch.Tensor, clips, params: ClipParams, aug: Augment) -> None:
    colour = params.affine() if aug.has_colour else None
    for i, clip in enumerate(clips):
        ref = reference(clip, params.box[i], bool(params.flip[i]),
                        None if colour is None else (colour[0][i], colour[1][i]), out_size(aug, clips))
        err = np.abs(video[i].cpu().numpy().astype(np.float64) - ref)
        assert err.max() <= 1, f"clip {i}: {int((err > 1).sum())} values off by more than one grey level"


def test_reference_resize_is_torchs_antialiased_bilinear() -> None:
    # the reference is written from the definition; torch's float64 kernel must agree with it, up and down
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 37, 53))
    for out_hw in [(48, 48), (20, 31), (37, 53), (74, 9)]:
        ref = np.einsum("yh,nchw,xw->ncyx", aa_weights(37, out_hw[0]), x, aa_weights(53, out_hw[1]))
        got = F.interpolate(torch.from_numpy(x), size=out_hw, mode="bilinear", antialias=True, align_corners=False)
        assert np.abs(got.numpy() - ref).max() < 1e-9


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_cpu_path_within_one_grey_level_of_float64_reference(name: str) -> None:
    aug = AUGMENTS[name]
    clips = make_clips(8)
    params = aug.draw(3, 1, np.arange(100, 108), 72, 96)
    if aug.flip:
        assert 0 < params.flip.sum() < 8  # both branches run
    video = transform_clips(clips, params, aug, "cpu")
    assert video.dtype == torch.uint8 and video.shape == (8, 4, *out_size(aug, clips), 3)
    assert video.is_contiguous()
    check_against_reference(video, clips, params, aug)


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_torch_path_agrees_with_reference_and_cpu_path(name: str) -> None:
    # the code that runs on CUDA tensors (GPU decode, or CPU clips sent in one copy), on CPU tensors
    aug = AUGMENTS[name]
    clips = make_clips(6, seed=2)
    params = aug.draw(5, 0, np.arange(6), 72, 96)
    colour = params.affine() if aug.has_colour else None
    boxes = _boxes_on(torch.device("cpu"), clips, params)
    on_torch = _transform_torch(boxes, params, colour, out_size(aug, clips))
    check_against_reference(on_torch, clips, params, aug)
    cpu = transform_clips(clips, params, aug, "cpu")
    assert (on_torch.int() - cpu.int()).abs().max() <= 1
    # clips given as tensors (as DALI gives them) take the same path
    as_tensors = [torch.from_numpy(c) for c in clips]
    assert torch.equal(_transform_torch(_boxes_on(torch.device("cpu"), as_tensors, params), params, colour,
                                        out_size(aug, clips)), on_torch)


def test_boxes_of_host_clips_travel_in_one_buffer() -> None:
    aug = Augment(size=48)
    clips = make_clips(5)
    params = aug.draw(0, 0, np.arange(5), 72, 96)
    boxes = _boxes_on(torch.device("cpu"), clips, params)
    assert len({b.untyped_storage().data_ptr() for b in boxes}) == 1  # one buffer, hence one copy to a GPU
    for b, c, (y0, x0, h, w) in zip(boxes, clips, params.box):
        assert np.array_equal(b.numpy(), c[:, y0:y0 + h, x0:x0 + w])
    # clips already on the device are viewed, not copied
    on_device = [torch.from_numpy(c) for c in clips]
    views = _boxes_on(torch.device("cpu"), on_device, params)
    assert all(v.untyped_storage().data_ptr() == c.untyped_storage().data_ptr() for v, c in zip(views, on_device))


def test_tensor_clips_on_the_cpu_match_numpy_clips() -> None:
    aug = Augment(size=48, **STRONG)
    clips = make_clips(4)
    params = aug.draw(9, 2, np.arange(4), 72, 96)
    a = transform_clips(clips, params, aug, "cpu")
    b = transform_clips([torch.from_numpy(c) for c in clips], params, aug, torch.device("cpu"))
    assert torch.equal(a, b)


def test_non_square_frames_of_different_sizes() -> None:
    # a --no-crop store: each clip its own frame size, one output size
    aug = Augment(size=32, **STRONG)
    clips = [make_clips(1, h=h, w=w, seed=h)[0] for h, w in [(40, 90), (64, 36), (33, 33)]]
    params = aug.draw(1, 0, np.arange(3), np.array([40, 64, 33]), np.array([90, 36, 33]))
    check_against_reference(transform_clips(clips, params, aug, "cpu"), clips, params, aug)


def test_transform_clips_refuses_what_it_cannot_do() -> None:
    aug = Augment(size=48)
    clips = make_clips(2)
    params = aug.draw(0, 0, np.arange(2), 72, 96)
    with pytest.raises(ValueError, match="2 clips but parameters for 3"):
        transform_clips(clips, aug.draw(0, 0, np.arange(3), 72, 96), aug, "cpu")
    with pytest.raises(ValueError, match="does not hold its crop box"):
        transform_clips([c[:, :30, :30] for c in clips], params, aug, "cpu")
    with pytest.raises(ValueError, match="same number of frames"):
        transform_clips([clips[0], clips[1][:2]], params, aug, "cpu")
    with pytest.raises(ValueError, match="uint8"):
        transform_clips([c.astype(np.float32) for c in clips], params, aug, "cpu")
    none = Augment.none()
    mixed = [clips[0], make_clips(1, h=64, w=64)[0]]
    with pytest.raises(ValueError, match="give Augment\\(size=...\\)"):
        transform_clips(mixed, none.draw(0, 0, np.arange(2), np.array([72, 64]), np.array([96, 64])), none, "cpu")


def test_colour_crop_refuses_bad_arguments_clearly() -> None:
    clip = make_clips(1)[0]
    eye, zero = np.eye(3), np.zeros(3)
    out = np.empty((4, 10, 12, 3), np.uint8)
    _core.colour_crop(clip, (1, 2, 10, 12), True, eye, zero, out)
    assert np.array_equal(out, clip[:, 1:11, 2:14][:, :, ::-1])
    with pytest.raises(TypeError, match="out must be a numpy array"):
        _core.colour_crop(clip, (1, 2, 10, 12), False, eye, zero, torch.from_numpy(out))
    with pytest.raises(ValueError, match=r"shape \(4, 10, 11, 3\) for box 10x11, got \(4, 10, 12, 3\)"):
        _core.colour_crop(clip, (1, 2, 10, 11), False, eye, zero, out)
    with pytest.raises(ValueError, match="does not fit frames of 72x96"):
        _core.colour_crop(clip, (70, 2, 10, 12), False, eye, zero, out)
    with pytest.raises(ValueError, match="must not overlap"):  # an out made over the clip's own memory
        _core.colour_crop(clip, (0, 0, 10, 12), False, eye, zero,
                          np.lib.stride_tricks.as_strided(clip, out.shape, out.strides))
    with pytest.raises(ValueError, match="packed RGB pixels"):
        _core.colour_crop(np.ascontiguousarray(clip.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3),
                          (0, 0, 10, 12), False, eye, zero, out)
    with pytest.raises(ValueError, match=r"matrix\[0\]\[1\] = 100"):
        _core.colour_crop(clip, (0, 0, 10, 12), False, [[1, 100, 0], [0, 1, 0], [0, 0, 1]], zero, out)
    with pytest.raises(ValueError, match="read-only"):
        ro = out.copy()
        ro.flags.writeable = False
        _core.colour_crop(clip, (0, 0, 10, 12), False, eye, zero, ro)


def test_resize_crop_matches_torch_and_refuses_bad_arguments_clearly() -> None:
    clip = make_clips(1)[0]
    out = np.empty((4, 30, 20, 3), np.uint8)
    _core.resize_crop(clip, (1, 2, 50, 61), True, out)  # a strided view of the clip, read where it lies
    ref = F.interpolate(torch.from_numpy(clip[:, 1:51, 2:63]).permute(0, 3, 1, 2).double(), size=(30, 20),
                        mode="bilinear", antialias=True, align_corners=False).permute(0, 2, 3, 1).flip(2)
    assert np.abs(out - ref.numpy()).max() <= 0.52  # rounding, plus the fixed point's 0.02
    portable = np.empty_like(out)
    _core.resize_crop(clip, (1, 2, 50, 61), True, portable, simd=False)
    assert np.array_equal(out, portable)
    with pytest.raises(TypeError, match="out must be a numpy array"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, torch.from_numpy(out))
    with pytest.raises(ValueError, match="of 4 frames"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, out[:3])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, np.empty((4, 60, 20, 3), np.uint8)[:, ::2])
    with pytest.raises(ValueError, match="does not fit frames of 72x96"):
        _core.resize_crop(clip, (30, 2, 50, 61), False, out)
    with pytest.raises(ValueError, match="must not overlap"):
        _core.resize_crop(clip, (0, 0, 50, 61), False, np.lib.stride_tricks.as_strided(clip, out.shape, out.strides))
    with pytest.raises(ValueError, match="packed RGB pixels"):
        _core.resize_crop(np.ascontiguousarray(clip.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3),
                          (0, 0, 10, 12), False, out)
    with pytest.raises(ValueError, match="matrix and offset together"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, out, np.eye(3))
    with pytest.raises(ValueError, match=r"matrix\[0\]\[1\] = 100"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, out, [[1, 100, 0], [0, 1, 0], [0, 0, 1]], np.zeros(3))
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.resize_crop(clip, (1, 2, 50, 61), False, ro)


# ---------------------------------------------------------------------------------------- through ClipLoader
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("augment")
    src = tmp / "src"
    src.mkdir()
    for i, n in enumerate([60, 80]):
        make_video(src / f"v{i}.mp4", frames=n, w=64, h=48, rate=30)
    r = ingest(src, tmp / "store", fps=10, size=32, gop=4, codec="raw", progress=False)
    assert r.ok, r.problems
    return tmp / "store"


def test_loader_batches_are_the_reference_augmentation(store: Path) -> None:
    aug = Augment(size=24, **STRONG)
    loader = ClipLoader(store, clip_len=4, batch_size=4, augment=aug, seed=5)
    g = zarr.open_group(str(store), mode="r")
    for batch in loader:
        clips = [g[f"videos/{v}/frames"][int(s):int(s) + 4] for v, s in zip(batch.video_id, batch.start)]
        params = aug.draw(5, 0, batch.position.numpy(), 32, 32)
        check_against_reference(batch.video, clips, params, aug)


@pytest.mark.gpu
def test_cpu_decoded_clips_are_augmented_on_the_gpu(store: Path) -> None:
    aug = Augment(size=24, **STRONG)
    clips = make_clips(6)
    params = aug.draw(2, 0, np.arange(6), 72, 96)
    video = transform_clips(clips, params, aug, "cuda")
    assert video.is_cuda and video.dtype == torch.uint8
    check_against_reference(video, clips, params, aug)
    # decoded on the CPU for a CUDA consumer: the clips reach the GPU as uint8 crop boxes
    gpu = next(iter(ClipLoader(store, clip_len=4, batch_size=4, augment=aug, seed=5, device="cuda",
                               decode_device="cpu")))
    cpu = next(iter(ClipLoader(store, clip_len=4, batch_size=4, augment=aug, seed=5, device="cpu")))
    assert gpu.video.is_cuda and gpu.video_id == cpu.video_id
    assert (gpu.video.cpu().int() - cpu.video.int()).abs().max() <= 1
