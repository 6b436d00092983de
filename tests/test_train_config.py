"""The training config: shipped YAML files, dotted overrides and their types, clear errors naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from _train import babyfast

from babyfast.train.config import (CONFIG_DIR, Config, ConfigError, config_from_dict, config_to_dict, load_config,
                                   validate)


@pytest.mark.parametrize("name", ["videomae_tiny_cpu", "videomae_small", "videomae_base"])
def test_shipped_configs_load_and_validate(name: str) -> None:
    cfg = load_config(CONFIG_DIR / f"{name}.yaml", ["data.store=somewhere"])
    validate(cfg)
    assert cfg.objective == "videomae" and cfg.model.name.startswith("vit_")
    assert load_config(name, ["data.store=x"]).model.name == cfg.model.name  # by name, too


def test_overrides_are_parsed_to_the_fields_types() -> None:
    cfg = load_config(None, ["optim.lr=3e-4", "train.steps=200", "data.scale=[0.5, 1]", "model.depth=none",
                             "model.tubelet=[2, 8, 8]", "train.compile=true", "data.store=a/b.zarr", "train.out=1",
                             "data.decoder=-"])
    assert cfg.optim.lr == 3e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.train.steps == 200 and cfg.data.scale == (0.5, 1.0) and cfg.model.depth is None
    assert cfg.model.tubelet == (2, 8, 8) and cfg.train.compile is True
    assert cfg.data.store == "a/b.zarr" and cfg.train.out == "1" and cfg.data.decoder == "-"  # text stays text
    assert config_from_dict(config_to_dict(cfg)) == cfg  # what the run folder stores reads back the same


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", r"unknown config key 'optim.lrr'; allowed in optim: lr, scale_lr"),
    ("optimizer.lr=1", r"unknown config key 'optimizer'"),
    ("train.steps=abc", r"config key 'train.steps' must be int, got str 'abc'"),
    ("train.steps=1.5", r"config key 'train.steps' must be int, got str '1.5'"),
    ("train.compile=maybe", r"'train.compile' must be bool"),
    ("data.scale=[0.5]", r"'data.scale' needs a list of 2 values"),
    ("data=5", r"config section 'data' must be a mapping"),
    ("optim.lr", r"not KEY=VALUE"),
])
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("override, message", [
    ("model.name=vit_huge", r"'model.name' = 'vit_huge' is not allowed; registered models: vit_base"),
    ("objective=simclr", r"'objective' = 'simclr' is not allowed"),
    ("data.clip_len=5", r"'data.clip_len' = 5 .* multiple of the tubelet's 2 frames"),
    ("data.size=100", r"'data.size' = 100 .* multiple of the patch size 16"),
    ("data.order=random", r"'data.order' = 'random' is not allowed; one of shuffle, age, age_mix"),
    ("data.window=0", r"'data.window' = 0 is not allowed; it must be >= 1"),
    ("train.precision=fp8", r"'train.precision'"),
    ("optim.min_lr=1", r"'optim.min_lr'"),
    ("model.attention_backend=flash3", r"'model.attention_backend'"),
])
def test_values_are_validated(override: str, message: str) -> None:
    cfg = load_config(None, ["data.store=x", override])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)
    with pytest.raises(ConfigError, match=r"'data.store'"):
        validate(Config())


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=rf"{bad}: unknown config key 'train.stpes'"):
        load_config(bad)
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"does not exist; configs shipped in .*videomae_tiny_cpu"):
        load_config(tmp_path / "missing.yaml")


def test_cli_reports_config_errors_without_a_traceback(tmp_path: Path) -> None:
    r = babyfast("train", "--config", "videomae_tiny_cpu", "optim.lrr=1", "data.store=x", timeout=120)
    assert r.returncode == 1
    assert "babyfast train: unknown config key 'optim.lrr'" in r.stderr and "Traceback" not in r.stderr
