"""Text preprocessing: normalisation, orientation-word removal, the word tokenizer."""

from __future__ import annotations

import json
import re

import pytest

from smgeo_retrieval.text import (ORIENTATION_WORDS, PAD_ID, UNK_ID, Tokenizer, normalize,
                                  remove_orientation_words)


def test_normalize_lowercases_and_strips_punctuation():
    assert normalize("A Red, South-East house -- (big)!  ") == "a red south-east house big"
    assert normalize("it's") == "it s"


@pytest.mark.parametrize("text, expected", [
    ("a car park to the left of the house", "a car park next to the house"),
    ("a pool on the north-east side of it.", "a pool next to it."),
    ("trees on the north side", "trees nearby"),
    ("a house, with a grey building to the south-east", "a house, with a grey building nearby"),
    ("a red roof behind it, and a car in front of it", "a red roof next to it, and a car next to it"),
    ("a pool on its right, a shed on the left-hand side", "a pool nearby, a shed nearby"),
    ("a street view of a house, looking north-west.", "a street view of a house."),
    ("an overhead image of a field, north is up.", "an overhead image of a field."),
    ("a building across the road to the west", "a building across the road"),
    ("a wood across the road on the right", "a wood across the road"),
    ("right next to a river", "next to a river"),
])
def test_remove_orientation_words(text, expected):
    assert remove_orientation_words(text) == expected


def test_removal_leaves_no_orientation_word_and_is_idempotent():
    text = ("a drone photo of a red house, to the left of it is a tennis court, behind it a pond, "
            "on the south-west side a car park and a northern field, facing east")
    out = remove_orientation_words(text)
    words = set(normalize(out).split())
    assert not words & set(ORIENTATION_WORDS), out
    assert remove_orientation_words(out) == out
    assert "red house" in out and "tennis court" in out and "car park" in out


def test_orientation_words_constant_lists_compass_and_sides():
    for w in ("left", "right", "north", "south-east", "behind", "front"):
        assert w in ORIENTATION_WORDS


def test_tokenizer_build_encode_decode():
    tok = Tokenizer.build(["a red house", "a blue pool", "A red car!"])
    assert tok.vocab[0] == "a" and tok.vocab[1] == "red"  # most frequent first
    ids = tok.encode(["a red boat next to a pool", "red"], max_len=6)
    assert [len(r) for r in ids] == [6, 6]
    assert ids[0][2] == UNK_ID and ids[1][1:] == [PAD_ID] * 5
    assert tok.decode(ids[0]) == "a red <unk> <unk> <unk> a"
    assert len(tok) == len(tok.vocab) + 2
    with pytest.raises(ValueError):
        tok.encode(["x"], 0)


def test_tokenizer_build_is_order_independent_and_limited():
    texts = ["b b a", "c a", "d"]
    assert Tokenizer.build(texts) == Tokenizer.build(texts[::-1])
    assert Tokenizer.build(texts, min_count=2).vocab == ["a", "b"]
    assert Tokenizer.build(texts, max_size=1).vocab == ["a"]


def test_tokenizer_json_round_trip():
    tok = Tokenizer.build(["a small house with a red gabled roof", "a blue tennis court"])
    data = tok.to_json()
    back = Tokenizer.from_json(json.loads(json.dumps(data)))
    assert back == tok
    assert Tokenizer.from_json(json.dumps(data)) == tok
    assert back.encode(["a red tennis court"], 8) == tok.encode(["a red tennis court"], 8)
    with pytest.raises(ValueError):
        Tokenizer.from_json({"format": "something else", "vocab": []})


def test_text_module_does_not_import_torch():
    import smgeo_retrieval.text as mod

    src = open(mod.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(import|from)\s+torch", src, re.M)
