"""Video ViT: registry, parameter counts against VideoMAE's encoders, shapes and gradients of every size, the
visible-token path against masked attention, Triton against torch backends, the position embedding."""
from __future__ import annotations

import pytest
import torch

from babyfast.kernels import patchify_reference
from babyfast.train.models import (SIZES, VideoViT, count_parameters, create_model, list_models, register_model,
                                   sincos_pos_embed_3d)
from babyfast.train.models.vit import PatchEmbed

# VideoMAE's encoders (and transformers' VideoMAEModel built from the same config, whose counts
# bench/train.py records beside ours): patch embedding + blocks + final norm, no head.
VIDEOMAE_ENCODER_PARAMS = {"vit_tiny": 5_631_552, "vit_small": 21_879_936, "vit_base": 86_227_200,
                           "vit_large": 303_860_736}


def videomae_encoder_formula(d: int, depth: int, mlp: int = 4, pixels: int = 3 * 2 * 16 * 16) -> int:
    """Counted from VideoMAE's modules: Conv3d patch embedding; per block two LayerNorms, qkv without bias
    plus q and v biases, output projection, MLP; a final LayerNorm."""
    embed = pixels * d + d
    block = 2 * 2 * d + 3 * d * d + 2 * d + d * d + d + d * mlp * d + mlp * d + mlp * d * d + d
    return embed + depth * block + 2 * d


def video(b: int = 2, t: int = 4, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), dtype=torch.uint8, generator=g)


def test_registry_lists_creates_and_refuses() -> None:
    assert {"vit_tiny", "vit_small", "vit_base", "vit_large"} <= set(list_models())
    assert list_models("vit_s*") == ["vit_small"]
    m = create_model("vit_small", depth=2)
    assert isinstance(m, VideoViT) and len(m.blocks) == 2 and m.embed_dim == 384
    with pytest.raises(ValueError, match=r"unknown model 'vit_huge'.*vit_base"):
        create_model("vit_huge")
    with pytest.raises(ValueError, match="already registered"):
        @register_model
        def vit_tiny(**kw):  # noqa: F811  (a second constructor of the same name)
            return VideoViT(**kw)


@pytest.mark.parametrize("name", sorted(VIDEOMAE_ENCODER_PARAMS))
def test_parameter_counts_equal_videomae(name: str) -> None:
    size = SIZES[name]
    expected = VIDEOMAE_ENCODER_PARAMS[name]
    assert videomae_encoder_formula(size["embed_dim"], size["depth"]) == expected
    with torch.device("meta"):  # counts without spending seconds initializing 300 M weights
        assert count_parameters(create_model(name)) == expected


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_size_shapes_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    # ViT-L at its width and heads but 4 of its 24 blocks: the other 20 repeat them, and the full depth
    # is counted above; 300 M parameters initialized and differentiated would cost this test 20 s
    depth = {"vit_large": 4}.get(name, SIZES[name]["depth"])
    model = create_model(name, depth=depth, attention_backend="sdpa", patchify_backend="torch")
    x = video(2, 2, 32, 32)
    visible = torch.tensor([[0, 3], [1, 2]])
    out = model(x, visible=visible)
    d = SIZES[name]["embed_dim"]
    assert out.shape == (2, 2, d) and out.dtype == torch.float32
    out.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), \
        [n for n, g in grads.items() if g is None]
    assert grads["patch_embed.proj.weight"].abs().sum() > 0 and grads["blocks.0.attn.qkv.weight"].abs().sum() > 0
    assert model(x).shape == (2, 4, d)


@pytest.mark.parametrize("backend", ["sdpa", "math"])
def test_visible_tokens_equal_full_encoder_with_attention_limited_to_them(backend: str) -> None:
    torch.manual_seed(1)
    model = create_model("vit_tiny", embed_dim=64, depth=3, num_heads=2, attention_backend=backend,
                         patchify_backend="torch").eval()
    x = video(2, 4, 48, 32)  # 2 x 3 x 2 = 12 tubelets
    visible = torch.tensor([[0, 2, 5, 7, 11], [1, 3, 4, 9, 10]])
    keep = torch.zeros(2, 12, dtype=torch.bool)
    keep[torch.arange(2)[:, None], visible] = True
    only = model(x, visible=visible)
    full = model(x, key_padding_mask=keep)
    restricted = torch.stack([full[i, visible[i]] for i in range(2)])
    torch.testing.assert_close(only, restricted, atol=2e-5, rtol=1e-5)
    # and the masked tubelets really were left out: full attention gives other outputs
    assert not torch.allclose(torch.stack([model(x)[i, visible[i]] for i in range(2)]), only, atol=1e-3)


@pytest.mark.interpreter
def test_triton_backends_equal_torch_backends() -> None:
    torch.manual_seed(2)
    ref = create_model("vit_tiny", embed_dim=64, depth=1, num_heads=2, attention_backend="sdpa",
                       patchify_backend="torch")
    tri = create_model("vit_tiny", embed_dim=64, depth=1, num_heads=2, attention_backend="triton",
                       patchify_backend="triton")
    tri.load_state_dict(ref.state_dict())
    x = video(1, 2, 32, 48)  # 6 tubelets
    visible = torch.tensor([[0, 2, 3, 5]])
    outs, grads = [], []
    for m in (ref, tri):
        y = m(x, visible=visible)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-4, rtol=1e-4)
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], atol=1e-4, rtol=1e-3, msg=n)


def test_patch_embed_equals_conv3d_on_normalized_pixels() -> None:
    torch.manual_seed(3)
    embed = PatchEmbed(32, backend="torch")
    x = video(2, 4, 32, 32)
    pos = torch.randn(8, 32)
    visible = torch.tensor([[1, 4, 6], [0, 2, 7]])
    want = patchify_reference(x, weight=embed.proj.weight.detach().double(), bias=embed.proj.bias.detach().double(),
                              pos_embed=pos.double(), visible=visible)
    got = embed(x, pos_embed=pos, visible=visible)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="not divisible by the tubelet"):
        embed(video(1, 3, 32, 32))
    with pytest.raises(ValueError, match="3 frames of 32x32 does not divide into tubelets"):
        create_model("vit_tiny", depth=1)(video(1, 3, 32, 32))


def test_sincos_position_embedding_follows_the_token_order() -> None:
    grid, dim = (3, 4, 5), 192
    pe = sincos_pos_embed_3d(grid, dim)
    assert pe.shape == (60, dim) and pe.abs().max() <= 1.0
    assert torch.unique(pe, dim=0).shape[0] == 60  # every tubelet has its own embedding
    per = dim // 3 // 2 * 2
    # token (t, r, c) sits at t·20 + r·5 + c; the row part depends on r only, the column part on c only
    t_dims, r_dims = dim - 2 * per, per
    a, b = pe[1 * 20 + 2 * 5 + 3], pe[0 * 20 + 2 * 5 + 1]
    torch.testing.assert_close(a[t_dims:t_dims + r_dims], b[t_dims:t_dims + r_dims])
    assert not torch.allclose(a[:t_dims], b[:t_dims]) and not torch.allclose(a[-per:], b[-per:])
    with pytest.raises(ValueError, match="even"):
        sincos_pos_embed_3d(grid, 63)


def test_drop_path_is_random_in_training_and_off_in_eval() -> None:
    torch.manual_seed(4)
    model = create_model("vit_tiny", embed_dim=64, depth=4, num_heads=2, drop_path=0.5, attention_backend="sdpa")
    x = video(4, 2, 32, 32)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    with pytest.raises(ValueError, match="drop_path"):
        create_model("vit_tiny", drop_path=1.0)
