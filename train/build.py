"""Building a run's objective from its config: the encoder, the objective's sections, the vocabulary."""
from __future__ import annotations

from typing import Any

from .config import Config, ConfigError, config_to_dict
from .models import create_model
from .objectives import Objective, create_objective, objective_class
from .vocab import Vocabulary, build_vocabulary, store_utterances

__all__ = ["build_objective", "objective_sections", "run_vocabulary", "encoder_overrides"]


def encoder_overrides(cfg: Config) -> dict[str, Any]:
    """Keyword arguments of `create_model` that the model config sets."""
    m = cfg.model
    out: dict[str, Any] = {"drop_path": m.drop_path, "attention_backend": m.attention_backend,
                           "patchify_backend": m.patchify_backend}
    for key in ("embed_dim", "depth", "num_heads", "mlp_ratio", "tubelet"):
        value = getattr(m, key)
        if value is not None:
            out[key] = tuple(value) if key == "tubelet" else value
    return out


def build_objective(cfg: Config, vocabulary: Vocabulary | None = None) -> Objective:
    """The objective with its freshly initialized encoder, on the CPU (seed it first for a given init)."""
    cls = objective_class(cfg.objective)
    kwargs: dict[str, Any] = config_to_dict(getattr(cfg, cfg.objective))
    for name in cls.extra_sections:
        kwargs[name] = config_to_dict(getattr(cfg, name))
    if cls.needs_vocabulary:
        if vocabulary is None:
            raise ConfigError(f"objective {cfg.objective!r} needs a vocabulary of the corpus's words")
        kwargs["vocabulary"] = vocabulary
    encoder = create_model(cfg.model.name, **encoder_overrides(cfg))
    return create_objective(cfg.objective, encoder, **kwargs, seed=cfg.train.seed)


def objective_sections(cfg: Config) -> tuple[str, ...]:
    """The config sections that define the objective (a resumed run must agree on them)."""
    return (cfg.objective, *objective_class(cfg.objective).extra_sections)


def run_vocabulary(cfg: Config, state: dict[str, Any] | None) -> Vocabulary | None:
    """The run's vocabulary: the checkpoint's when resuming, else built from the store's transcripts."""
    if not objective_class(cfg.objective).needs_vocabulary:
        return None
    if state is not None and state.get("vocabulary"):
        return Vocabulary.from_json(state["vocabulary"], f"{state['path']} (vocabulary)")
    texts = store_utterances([cfg.data.store])
    if not texts:
        raise ConfigError(f"objective {cfg.objective!r} pairs clips with utterances, but {cfg.data.store} has no "
                          f"transcripts (ingest with utterances.csv)")
    return build_vocabulary(texts, cfg.contrastive.min_count, cfg.contrastive.max_vocab)


