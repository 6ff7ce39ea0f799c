"""Text preprocessing for retrieval: normalisation, orientation-word removal, a word tokenizer.

No torch here. Three pieces:

* :func:`normalize` - lowercase, punctuation to spaces (hyphens inside words are kept, so
  ``south-east`` stays one word), whitespace collapsed.
* :func:`remove_orientation_words` - drops the words that depend on the viewpoint (``left``,
  ``north-east``, ``behind`` ...), which do not survive a change of platform or heading. The
  rule (deterministic, applied in this order, case-insensitive):

  1. a relational phrase with an object, ``to/on/at/towards (the) DIR (side) of``, ``in
     front of`` and ``behind`` + a determiner or pronoun, becomes ``next to``;
  2. a viewing phrase ``looking/facing/heading (towards) (the) DIR`` and ``(with) north
     (is) up`` is removed;
  3. a phrase without an object, ``to/on/at/in/towards (the) (far) DIR (side)``, ``in
     front`` and ``behind``, becomes ``nearby``;
  4. any remaining orientation word (with a hyphenated suffix, e.g. ``left-hand``,
     ``north-facing``) is deleted;
  5. doubled ``nearby``, spaces before punctuation and empty clauses are tidied.

  ``DIR`` is any of :data:`ORIENTATION_WORDS` that names a direction (compass points in
  hyphenated, joined or spaced form, ``left``, ``right``).
* :class:`Tokenizer` - word vocabulary built from texts; ids: 0 = padding, 1 = unknown.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Iterable

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
TOKENIZER_FORMAT = "smgeo-retrieval-tokenizer"
TOKENIZER_VERSION = 1

_COMPASS = ("north-east", "north-west", "south-east", "south-west", "northeast", "northwest", "southeast",
            "southwest", "north", "south", "east", "west")
# Words whose meaning depends on the viewpoint (heading, platform). Directions first, then the
# other relational words the rule handles (see the module docstring).
ORIENTATION_WORDS: tuple[str, ...] = _COMPASS + (
    "northern", "southern", "eastern", "western", "northwards", "southwards", "eastwards", "westwards",
    "left", "right", "leftmost", "rightmost", "front", "behind")

_DIR = r"(?:(?:north|south)[- ]?(?:east|west)|north|south|east|west|left|right)"
_SIDE = r"(?:[- ](?:hand[- ])?side)?"
_OBJECT = r"(?=\s+(?:it|its|them|the|a|an|this|that|these|those|one|some|two|three|[a-z]+'s)\b)"
_RULES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(rf"\b(?:to|on|at|towards?)\s+(?:the\s+|its\s+|their\s+)?(?:far\s+)?{_DIR}{_SIDE}\s+of\b", re.I),
     "next to"),
    (re.compile(r"\bin\s+front\s+of\b", re.I), "next to"),
    (re.compile(rf"\bbehind\b{_OBJECT}", re.I), "next to"),
    (re.compile(rf"\s*,?\s*\b(?:looking|facing|heading|pointing)\s+(?:towards?\s+)?(?:the\s+)?{_DIR}\b", re.I), ""),
    (re.compile(r"\s*,?\s*\b(?:with\s+)?north\s+(?:is\s+|pointing\s+)?up\b", re.I), ""),
    (re.compile(rf"\b(?:to|on|at|in|towards?)\s+(?:the\s+|its\s+|their\s+)?(?:far\s+)?{_DIR}{_SIDE}\b", re.I),
     "nearby"),
    (re.compile(r"\bin\s+front\b|\bbehind\b", re.I), "nearby"),
    (re.compile(r"\b(?:" + "|".join(sorted((re.escape(w) for w in ORIENTATION_WORDS), key=len, reverse=True))
                + r"|north\s+east|north\s+west|south\s+east|south\s+west)(?:-[a-z]+)*\b", re.I), ""),
)
_TIDY: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\bnearby(\s+and)?\s+nearby\b", re.I), "nearby"),
    (re.compile(r"\b(across\s+the\s+(?:road|street|river))\s+(?:nearby|next\s+to\s+it)\b", re.I), r"\1"),
    (re.compile(r"\bfurther\s+back\s+next\s+to\b", re.I), "next to"),
    (re.compile(r"\bjust\s+next\s+to\b", re.I), "next to"),
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r" +([,.;:!?])"), r"\1"),
    (re.compile(r"([,;:])(?:\s*[,;:])+"), r"\1"),
    (re.compile(r"[,;:]\s*([.!?])"), r"\1"),
    (re.compile(r"^\s*[,;:]\s*"), ""),
)
_PUNCT = re.compile(r"[^\w\s-]|_")
_LONE_HYPHEN = re.compile(r"(?<!\w)-+|-+(?!\w)")


def normalize(text: str) -> str:
    """Lowercase; punctuation (anything not a letter, digit or in-word hyphen) becomes a space;
    runs of whitespace become one space; no leading/trailing space."""
    t = _PUNCT.sub(" ", text.lower())
    t = _LONE_HYPHEN.sub(" ", t)
    return " ".join(t.split())


def remove_orientation_words(text: str) -> str:
    """``text`` without viewpoint-dependent words, by the rule in the module docstring
    (e.g. ``"a car park to the left of the house"`` -> ``"a car park next to the house"``,
    ``"trees on the north side"`` -> ``"trees nearby"``). Case is kept elsewhere."""
    t = text
    for pattern, repl in _RULES:
        t = pattern.sub(repl, t)
    for pattern, repl in _TIDY:
        t = pattern.sub(repl, t)
    return t.strip()


def tokenize(text: str) -> list[str]:
    """Words of :func:`normalize` ``(text)``."""
    return normalize(text).split()


class Tokenizer:
    """Word-level tokenizer. ``vocab``: the words, id = position + 2 (0 = padding, 1 = unknown).

    >>> tok = Tokenizer.build(["a red house", "a blue pool"])
    >>> tok.encode(["a red car"], max_len=5)
    [[2, 6, 1, 0, 0]]
    """

    def __init__(self, vocab: Iterable[str]) -> None:
        words = list(vocab)
        if len(set(words)) != len(words) or PAD_TOKEN in words or UNK_TOKEN in words:
            raise ValueError("tokenizer vocabulary must hold distinct words other than <pad> and <unk>")
        self.vocab = words
        self._ids = {w: i + 2 for i, w in enumerate(words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "Tokenizer":
        """Vocabulary of the words of ``texts`` seen at least ``min_count`` times, most frequent
        first (ties alphabetically, so the result does not depend on the order of ``texts``),
        at most ``max_size`` words (special tokens not counted)."""
        counts = Counter(w for t in texts for w in tokenize(t))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words[:max_size] if max_size is not None else words)

    def __len__(self) -> int:
        """Number of ids (vocabulary + the two special tokens): the embedding table size."""
        return len(self.vocab) + 2

    @property
    def size(self) -> int:
        return len(self)

    def ids(self, text: str) -> list[int]:
        """Ids of the words of ``text`` (unpadded, untruncated)."""
        return [self._ids.get(w, UNK_ID) for w in tokenize(text)]

    def encode(self, texts: Iterable[str], max_len: int) -> list[list[int]]:
        """Ids of each text, truncated / right-padded with :data:`PAD_ID` to ``max_len``."""
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {max_len}")
        out = []
        for t in texts:
            ids = self.ids(t)[:max_len]
            out.append(ids + [PAD_ID] * (max_len - len(ids)))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` (padding dropped, unknown shown as ``<unk>``)."""
        words = []
        for i in ids:
            if i == PAD_ID:
                continue
            words.append(self.vocab[i - 2] if 2 <= i < len(self) else UNK_TOKEN)
        return " ".join(words)

    def to_json(self) -> dict:
        """JSON-serialisable description (``json.dumps`` it to store it)."""
        return {"format": TOKENIZER_FORMAT, "version": TOKENIZER_VERSION, "pad_id": PAD_ID, "unk_id": UNK_ID,
                "vocab": list(self.vocab)}

    @classmethod
    def from_json(cls, data: dict | str) -> "Tokenizer":
        """Inverse of :meth:`to_json`; accepts the dict or its JSON text."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or data.get("format") != TOKENIZER_FORMAT or \
                not isinstance(data.get("vocab"), list):
            raise ValueError(f"not a {TOKENIZER_FORMAT} description")
        if data.get("version") != TOKENIZER_VERSION:
            raise ValueError(f"tokenizer version {data.get('version')!r} is not supported (expected "
                             f"{TOKENIZER_VERSION})")
        return cls(data["vocab"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.vocab == other.vocab
