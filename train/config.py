"""The training configuration: a tree of dataclasses with defaults, YAML files, dotted overrides.

    cfg = load_config("configs/videomae_tiny_cpu.yaml", ["optim.lr=3e-4", "train.steps=200"])

A YAML file and the overrides set any subset of the fields; everything else keeps its default. An
unknown key or a value of the wrong type is a `ConfigError` naming the dotted key, what was given and
what is allowed. The resolved tree is written into the run folder (`config.yaml`) and the checkpoint.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from babyfast.loader.plan import DEFAULT_WINDOW

__all__ = ["Config", "DataConfig", "ModelConfig", "VideoMAEConfig", "ContrastiveConfig", "VideoMAEContrastiveConfig",
           "OptimConfig", "TrainConfig", "ConfigError",
           "load_config", "config_from_dict", "config_to_dict", "apply_overrides", "find_config", "validate",
           "CONFIG_DIR"]

# configs/ at the repository root (an editable install finds it; others pass a path)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration key or value that is not allowed; the message names it."""


@dataclass
class DataConfig:
    store: str = ""                 # the babyfast store to train on (required)
    clip_len: int = 16              # frames per clip (a multiple of the tubelet's t)
    size: int = 224                 # output side of the random resized crop (a multiple of the patch)
    batch_size: int = 8             # clips per rank and micro-batch
    frame_step: int = 1             # a clip reads every k-th stored frame
    start_stride: int | None = None  # clip starts on this grid of stored frames (None: the store's GOP)
    jitter_starts: bool = False     # seeded start offsets inside the grid step (more distinct clips)
    anchor: str = "video"           # video | utterance (clips drawn around what the caregiver says)
    scale: tuple[float, float] = (0.25, 1.0)   # random resized crop: area fraction range
    flip: float = 0.5               # horizontal flip probability
    order: str = "shuffle"          # shuffle | age | age_mix (curriculum by the child's age)
    window: int = DEFAULT_WINDOW    # age, age_mix: clips are shuffled inside windows of this many candidates
    threads: int = 2                # the loader's read/decode threads
    prefetch: int = 4               # batches made ahead
    workers: int = 0                # DataLoader worker processes (0: the loader's threads in this process)
    decoder: str = "auto"           # auto | dali | pyav


@dataclass
class ModelConfig:
    name: str = "vit_tiny"          # a registered model (babyfast.train.list_models())
    drop_path: float = 0.0
    attention_backend: str = "auto"  # babyfast.kernels.ATTENTION_BACKENDS
    patchify_backend: str = "auto"   # babyfast.kernels.PATCHIFY_BACKENDS
    # size overrides (None: the size's own)
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float | None = None
    tubelet: tuple[int, int, int] | None = None


@dataclass
class VideoMAEConfig:
    mask_ratio: float = 0.9
    decoder_dim: int | None = None    # None: VideoMAE's width for the encoder's size
    decoder_depth: int = 4
    decoder_heads: int | None = None
    norm_pix_loss: bool = True


@dataclass
class ContrastiveConfig:
    embed_dim: int = 256            # the shared embedding space
    text_dim: int = 256
    text_encoder: str = "mean"      # mean (of word embeddings) | transformer (2 blocks)
    text_depth: int = 2
    text_heads: int = 4
    max_words: int = 32
    temperature: float = 0.07       # initial; learned
    max_logit_scale: float = 100.0
    shuffle_pairs: bool = False     # CVCL's control: clips paired with other clips' utterances
    min_count: int = 1              # vocabulary: words seen fewer times are unknown
    max_vocab: int | None = None


@dataclass
class VideoMAEContrastiveConfig:
    weight: float = 1.0             # loss = videomae + weight * contrastive


@dataclass
class OptimConfig:
    lr: float = 1.5e-4              # base learning rate for a global batch of 256 (scaled by batch / 256)
    scale_lr: bool = True
    min_lr: float = 1e-5            # end of the cosine (also scaled)
    warmup_steps: int = 0
    weight_decay: float = 0.05      # not on norms, biases, position embeddings, mask tokens
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0          # max global gradient norm; 0 turns clipping off
    accum_steps: int = 1            # micro-batches per optimizer step


@dataclass
class TrainConfig:
    out: str = "runs/run"           # run folder: config, checkpoints, logs, plot
    steps: int = 1000               # optimizer steps
    seed: int = 0
    device: str = "auto"            # auto (cuda if available) | cpu | cuda | cuda:N
    precision: str = "auto"         # auto (bf16 on CUDA, fp32 on the CPU) | bf16 | fp16 | fp32
    compile: bool = False           # torch.compile the objective
    distributed: str = "ddp"        # ddp | fsdp (FSDP2 fully_shard per block, for vit_large)
    log_every: int = 10
    save_every: int = 500
    keep: int = 3                   # checkpoints kept (the newest)
    skip_nonfinite: int = 0         # steps with a non-finite loss skipped before the run stops
    threads: int | None = None   # torch intra-op threads on the CPU (None: torch's default)
    progress: bool = True           # a progress bar on rank 0


@dataclass
class Config:
    objective: str = "videomae"     # a registered objective; its section below holds its arguments
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    videomae: VideoMAEConfig = field(default_factory=VideoMAEConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    videomae_contrastive: VideoMAEContrastiveConfig = field(default_factory=VideoMAEContrastiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------------------------- types
def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _yaml_value(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config key {key!r}: {text!r} is not valid YAML ({e})") from None


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """`value` as type `tp`, or a ConfigError naming `key`. Strings from the command line are parsed."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, inner[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = _yaml_value(key, value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"config key {key!r} needs a list of {len(args)} values ({_type_name(tp)}), "
                              f"got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.lower() in ("true", "yes", "1", "on")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # YAML 1.1 reads 3e-4 as a string, and overrides arrive as text
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"config key {key!r} must be {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _merge(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or '(top)'!r} must be a mapping, got "
                          f"{type(values).__name__} {values!r}")
    fields = _fields(type(obj))
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            raise ConfigError(f"unknown config key {key!r}; allowed in {prefix.rstrip('.') or 'the top level'}: "
                              f"{', '.join(fields)}")
        tp = fields[name]
        if dataclasses.is_dataclass(tp):
            if isinstance(value, str):  # a whole section on the command line: data={clip_len: 8}
                value = _yaml_value(key, value)
            _merge(getattr(obj, name), value, f"{key}.")
        else:
            setattr(obj, name, _coerce(key, tp, value))


def config_from_dict(values: dict[str, Any]) -> Config:
    cfg = Config()
    _merge(cfg, values)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict (tuples as lists) for YAML, JSON and checkpoints."""
    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    return plain(cfg)


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """Apply `section.key=value` strings; each value is read as the field's type (a str field keeps the
    text as given, lists are YAML: `data.scale=[0.5,1]`, `none` clears an optional field)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. optim.lr=3e-4)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        nested: dict[str, Any] = {}
        cur = nested
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = raw
        _merge(cfg, nested)
    return cfg


def find_config(name_or_path: str | Path) -> Path:
    """A config file by path, or by name in `configs/` (`videomae_tiny_cpu` or `videomae_tiny_cpu.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    raise ConfigError(f"config file {str(name_or_path)!r} does not exist"
                      + (f"; configs shipped in {CONFIG_DIR}: {', '.join(known)}" if known else ""))


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults, then the YAML file (if any), then the overrides."""
    cfg = Config()
    if path is not None:
        file = find_config(path)
        try:
            values = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{file}: not valid YAML: {e}") from e
        try:
            _merge(cfg, values)
        except ConfigError as e:
            raise ConfigError(f"{file}: {e}") from None
    return apply_overrides(cfg, overrides)


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key!r} = {value!r} is not allowed; {allowed}")


def validate(cfg: Config) -> Config:
    """Check values against what they may be (choices, ranges, divisibility); ConfigError naming the key."""
    from babyfast.kernels import ATTENTION_BACKENDS, PATCHIFY_BACKENDS

    from .models import list_models
    from .objectives import list_objectives

    d, m, o, t = cfg.data, cfg.model, cfg.optim, cfg.train
    _check(m.name in list_models(), "model.name", m.name, f"registered models: {', '.join(list_models())}")
    _check(cfg.objective in list_objectives(), "objective", cfg.objective,
           f"registered objectives: {', '.join(list_objectives())}")
    _check(hasattr(cfg, cfg.objective), "objective", cfg.objective, "it has no config section")
    _check(m.attention_backend in ATTENTION_BACKENDS, "model.attention_backend", m.attention_backend,
           f"one of {', '.join(ATTENTION_BACKENDS)}")
    _check(m.patchify_backend in PATCHIFY_BACKENDS, "model.patchify_backend", m.patchify_backend,
           f"one of {', '.join(PATCHIFY_BACKENDS)}")
    _check(d.order in ("shuffle", "age", "age_mix"), "data.order", d.order, "one of shuffle, age, age_mix")
    _check(d.decoder in ("auto", "dali", "pyav"), "data.decoder", d.decoder, "one of auto, dali, pyav")
    _check(d.anchor in ("video", "utterance"), "data.anchor", d.anchor, "one of video, utterance")
    c = cfg.contrastive
    _check(c.text_encoder in ("mean", "transformer"), "contrastive.text_encoder", c.text_encoder,
           "one of mean, transformer")
    _check(0 < c.temperature < 1, "contrastive.temperature", c.temperature, "it must be in (0, 1)")
    _check(c.min_count >= 1, "contrastive.min_count", c.min_count, "it must be >= 1")
    _check(d.start_stride is None or d.start_stride >= 1, "data.start_stride", d.start_stride,
           "it must be >= 1 or none")
    _check(t.precision in ("auto", "bf16", "fp16", "fp32"), "train.precision", t.precision,
           "one of auto, bf16, fp16, fp32")
    _check(t.distributed in ("ddp", "fsdp"), "train.distributed", t.distributed, "one of ddp, fsdp")
    _check(t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"), "train.device", t.device,
           "auto, cpu, cuda or cuda:N")
    for key, value, low in (("data.clip_len", d.clip_len, 1), ("data.size", d.size, 1),
                            ("data.batch_size", d.batch_size, 1),
                            ("data.frame_step", d.frame_step, 1), ("data.threads", d.threads, 1),
                            ("data.prefetch", d.prefetch, 1), ("data.window", d.window, 1),
                            ("data.workers", d.workers, 0),
                            ("optim.accum_steps", o.accum_steps, 1), ("optim.warmup_steps", o.warmup_steps, 0),
                            ("train.steps", t.steps, 1), ("train.log_every", t.log_every, 1),
                            ("train.save_every", t.save_every, 1), ("train.keep", t.keep, 1),
                            ("train.skip_nonfinite", t.skip_nonfinite, 0)):
        _check(value >= low, key, value, f"it must be >= {low}")
    _check(o.lr > 0, "optim.lr", o.lr, "it must be > 0")
    _check(0 <= o.min_lr <= o.lr, "optim.min_lr", o.min_lr, f"it must be in [0, optim.lr = {o.lr}]")
    _check(o.grad_clip >= 0, "optim.grad_clip", o.grad_clip, "it must be >= 0 (0 = off)")
    _check(0 <= d.flip <= 1, "data.flip", d.flip, "it is a probability")
    tubelet = m.tubelet or (2, 16, 16)
    _check(d.clip_len % tubelet[0] == 0, "data.clip_len", d.clip_len, f"it must be a multiple of the tubelet's "
           f"{tubelet[0]} frames")
    _check(d.size % tubelet[1] == 0, "data.size", d.size, f"it must be a multiple of the patch size {tubelet[1]}")
    _check(bool(d.store), "data.store", d.store, "give the store to train on (data.store=PATH)")
    return cfg
