"""A word vocabulary built from a store's own transcripts (no downloaded tokenizer), and the encoding of
utterances into padded id tensors.

Words are the lower-cased runs of letters (with inner apostrophes: "where's"); a word seen fewer than
`min_count` times in the transcripts becomes the unknown token. Ids: 0 padding, 1 unknown, then the words
by falling count (ties alphabetical), so a vocabulary is a pure function of the transcripts.

    babyfast vocab STORE [STORE ...] [--min-count 2] [--out vocab.json]
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Vocabulary", "words", "build_vocabulary", "store_utterances", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """The words of an utterance: lower-cased letter runs, inner apostrophes kept."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Words by id (`itos[0]` is padding, `itos[1]` the unknown token)."""

    itos: tuple[str, ...]
    min_count: int = 1

    def __post_init__(self) -> None:
        if self.itos[:2] != (PAD, UNK) or len(set(self.itos)) != len(self.itos):
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r} and has no word twice")

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def stoi(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos)}

    def ids(self, text: str) -> list[int]:
        table = self.stoi
        return [table.get(w, 1) for w in words(text)]

    def encode(self, texts: Sequence[str | None], max_words: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int64 `[B, L]`, mask bool `[B, L]`, True = a word). A None or wordless text is one unknown
        token (its row is still defined; callers leave such clips out of the loss)."""
        rows = [(self.ids(t) if t else [])[:max_words] or [1] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids, ids != 0

    def to_json(self) -> str:
        return json.dumps({"min_count": self.min_count, "words": list(self.itos)}, indent=0)

    @classmethod
    def from_json(cls, text: str, where: str = "vocabulary") -> Vocabulary:
        try:
            data = json.loads(text)
            return cls(tuple(data["words"]), int(data.get("min_count", 1)))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{where}: not a babyfast vocabulary ({e})") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        from babyfast._atomic import write_text

        return write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        return cls.from_json(Path(path).read_text(), str(path))


def store_utterances(stores: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Every utterance text of the stores' transcripts, store by store, video by video (sorted ids)."""
    from babyfast.loader.sources import StoreSource

    texts: list[str] = []
    for store in stores:
        source = StoreSource(store)
        for v in range(len(source.ids)):
            texts.extend(t for _, _, t in source.meta(v).utterances or [])
    return texts


def build_vocabulary(texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Vocabulary:
    """The words of `texts` seen at least `min_count` times, most frequent first (at most `max_size` ids
    with padding and unknown)."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter(w for t in texts for w in words(t))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        kept = kept[:max(0, max_size - 2)]
    return Vocabulary((PAD, UNK, *kept), min_count)
