"""The retrieval model (tiny preset): shapes, the fused score as one inner product, the gate,
config JSON round trip, checkpoint round trip and checkpoint errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from smgeo_geo.errors import CheckpointError, OptionError
from smgeo_retrieval.checkpoint import load_retrieval_checkpoint, save_retrieval_checkpoint
from smgeo_retrieval.model import (PLATFORMS, RetrievalConfig, RetrievalModel, get_retrieval_config,
                                   prepare_text)
from smgeo_retrieval.text import Tokenizer

TEXTS = ["a satellite image of a red house with a gabled roof, to the north of it is a blue pool.",
         "a drone photo of a grey warehouse next to a car park on the left.",
         "a street-level photo of a white tennis court behind it is a house.",
         "a house with a red roof next to a pool."]


def _model(**overrides) -> RetrievalModel:
    torch.manual_seed(0)
    tok = Tokenizer.build([prepare_text(t, True) for t in TEXTS])
    return RetrievalModel(get_retrieval_config("tiny", **overrides), tok).eval()


def _images(n: int, size: int = 40, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


PLATS = ["satellite", "drone", "ground", "drone"]


@pytest.mark.parametrize("routing", ["own", "all"])
def test_fused_score_is_one_inner_product(routing):
    model = _model(image_routing=routing)
    q = model.encode_queries(TEXTS)
    v = model.encode_images(_images(4), PLATS)
    cfg = model.config
    assert q.dtype == np.float32 and v.dtype == np.float32
    assert q.shape == (4, cfg.dim) and v.shape == (4, cfg.dim) and cfg.dim == 3 * cfg.embed_dim
    # the fused expert score computed explicitly
    with torch.no_grad():
        f = model.text(model.text_ids(TEXTS))
        g = torch.softmax(model.gate(f), -1)
        t = [torch.nn.functional.normalize(h(f), dim=-1) for h in model.text_heads]
        himg = model.image(model.pixels(_images(4)))
        vi = [torch.nn.functional.normalize(h(himg), dim=-1) for h in model.image_heads]
    expected = np.zeros((4, 4))
    for a in range(4):
        for b in range(4):
            experts = [PLATFORMS.index(PLATS[b])] if routing == "own" else range(3)
            expected[a, b] = sum(float(g[a, p] * (t[p][a] @ vi[p][b])) for p in experts)
    np.testing.assert_allclose(q @ v.T, expected, atol=1e-5)


def test_gate_sums_to_one_and_blocks_are_unit():
    model = _model()
    g = model.gate_weights(TEXTS)
    np.testing.assert_allclose(g.sum(1), 1.0, atol=1e-6)
    assert (g > 0).all()
    q = model.encode_queries(TEXTS).reshape(4, 3, -1)
    np.testing.assert_allclose(np.linalg.norm(q, axis=2), g, atol=1e-5)  # block norm = gate weight
    v = model.encode_images(_images(4), PLATS).reshape(4, 3, -1)
    norms = np.linalg.norm(v, axis=2)
    for i, p in enumerate(PLATS):  # own routing: only the item's platform block is set
        np.testing.assert_allclose(norms[i], np.eye(3)[PLATFORMS.index(p)], atol=1e-5)


def test_no_experts_single_head():
    model = _model(experts=False)
    q, v = model.encode_queries(TEXTS), model.encode_images(_images(4), PLATS)
    assert q.shape == v.shape == (4, model.config.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)


def test_orientation_removal_switch():
    on, off = _model(), _model(remove_orientation=False)
    text = "a house, to the north of it is a pool on the left"
    assert "north" not in on.tokenizer.decode(on.text_ids([text])[0].tolist())
    assert prepare_text(text, False).split()[-1] == "left"
    assert off.text_ids([text]).shape[1] > on.text_ids([text]).shape[1]


def test_images_of_any_size_and_bad_inputs():
    model = _model()
    v = model.encode_images(_images(2, size=57) + [np.zeros((20, 30), np.uint8)], ["ground"] * 3)
    assert v.shape == (3, model.config.dim)
    with pytest.raises(OptionError, match="platform"):
        model.encode_images(_images(1), ["boat"])
    with pytest.raises(OptionError):
        model.encode_images(_images(2), ["drone"])
    assert model.encode_queries([]).shape == (0, model.config.dim)


def test_config_json_round_trip_and_errors():
    cfg = get_retrieval_config("demo", vocab_size=77)
    back = RetrievalConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg
    with pytest.raises(OptionError, match="unknown field"):
        RetrievalConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(OptionError, match="image_routing"):
        RetrievalConfig.from_dict({**cfg.to_dict(), "image_routing": "sideways"})
    with pytest.raises(OptionError, match="experts"):
        RetrievalConfig.from_dict({**cfg.to_dict(), "experts": "yes"})
    with pytest.raises(OptionError, match="preset"):
        get_retrieval_config("huge")


def test_checkpoint_round_trip_identical_vectors(tmp_path):
    model = _model()
    path = save_retrieval_checkpoint(model, tmp_path / "m", metadata={"stage": 2, "epoch": 3, "corpus_seed": 5})
    assert path.name == "m.safetensors" and (tmp_path / "m.json").is_file()
    loaded = load_retrieval_checkpoint(tmp_path / "m.safetensors")
    assert loaded.checkpoint_metadata["epoch"] == 3 and loaded.tokenizer == model.tokenizer
    assert loaded.config == model.config and not loaded.training
    imgs = _images(4)
    np.testing.assert_array_equal(loaded.encode_queries(TEXTS), model.encode_queries(TEXTS))
    np.testing.assert_array_equal(loaded.encode_images(imgs, PLATS), model.encode_images(imgs, PLATS))
    # any of the three spellings of the path
    assert load_retrieval_checkpoint(tmp_path / "m.json").config == model.config
    assert load_retrieval_checkpoint(tmp_path / "m").config == model.config


def test_checkpoint_errors(tmp_path):
    model = _model()
    save_retrieval_checkpoint(model, tmp_path / "m")
    with pytest.raises(CheckpointError, match="not found"):
        load_retrieval_checkpoint(tmp_path / "missing.safetensors")
    # corrupt weights
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / "bad.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_retrieval_checkpoint(tmp_path / "bad.safetensors")
    # missing / corrupt sidecar
    (tmp_path / "nosidecar.safetensors").write_bytes((tmp_path / "m.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="nosidecar.json"):
        load_retrieval_checkpoint(tmp_path / "nosidecar.safetensors")
    (tmp_path / "nosidecar.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_retrieval_checkpoint(tmp_path / "nosidecar.safetensors")
    doc = json.loads((tmp_path / "m.json").read_text())
    for field, value, match in (("format", "smgeo", "format"), ("version", 9, "version"),
                                ("config", {**doc["config"], "embed_dim": -1}, "config"),
                                ("tokenizer", {"vocab": 3}, "tokenizer")):
        (tmp_path / "nosidecar.json").write_text(json.dumps({**doc, field: value}))
        with pytest.raises(CheckpointError, match=match):
            load_retrieval_checkpoint(tmp_path / "nosidecar.safetensors")
    # weights of another shape than the config says
    (tmp_path / "nosidecar.json").write_text(json.dumps({**doc, "config": {**doc["config"], "embed_dim": 8}}))
    with pytest.raises(CheckpointError, match="does not match"):
        load_retrieval_checkpoint(tmp_path / "nosidecar.safetensors")
