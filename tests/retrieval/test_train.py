"""Two-stage retrieval training (tiny preset, tiny generated corpus): loss goes down, hard
negatives, checkpoints per epoch, resume, CLI errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from smgeo_geo.errors import OptionError
from smgeo_retrieval.checkpoint import load_retrieval_checkpoint
from smgeo_retrieval.model import RetrievalModel, get_retrieval_config
from smgeo_retrieval.train import (RetrievalTrainOptions, ablation_options, batch_tensors, build_tokenizer,
                                   contrastive_loss, train_retrieval)
from smgeo_retrieval.train_data import load_pairs, mine_hard_negatives, stage2_batches
from tests.retrieval.retrieval_fixtures import TINY_SIZE, tiny_corpus_path
from tests.bad_inputs.conftest import run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus_path(tmp_path_factory)


@pytest.fixture(scope="module")
def pairs(corpus):
    return load_pairs(corpus, "train", TINY_SIZE), load_pairs(corpus, "val", TINY_SIZE)


def _options(out, **kw) -> RetrievalTrainOptions:
    base = dict(out_dir=out, preset="tiny", stage1_epochs=2, stage2_epochs=1, batch_size=8, warmup_steps=1,
                hard_per_anchor=1)
    return RetrievalTrainOptions(**{**base, **kw})


def test_one_step_reduces_loss_on_a_fixed_batch(pairs):
    train, _ = pairs
    torch.manual_seed(0)
    model = RetrievalModel(get_retrieval_config("tiny"), build_tokenizer(train, True))
    idx = np.arange(8)
    tensors = batch_tensors(model, train, idx, None, train.platform_codes(model.config.platforms), train.place_codes())
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    first, parts = contrastive_loss(model, *tensors, gate_weight=0.5)
    assert set(parts) >= {"nce", "gate_ce", "loss"}
    for _ in range(5):
        loss, _ = contrastive_loss(model, *tensors, gate_weight=0.5)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after, _ = contrastive_loss(model, *tensors, gate_weight=0.5)
    assert after.item() < first.item()


def test_hard_negatives_are_other_places(pairs):
    train, _ = pairs
    model = RetrievalModel(get_retrieval_config("tiny"), build_tokenizer(train, True))
    hard = mine_hard_negatives(model, train, torch.device("cpu"), pool=4)
    places = np.array(train.place_ids)
    assert hard.shape == (len(train), 4)
    for i, row in enumerate(hard):
        assert all(places[j] != places[i] for j in row if j >= 0)
    batches = stage2_batches(hard, batch_size=8, per_anchor=2, rng=np.random.default_rng(0))
    assert len(batches) == len(train) // 8
    assert all(len(b) == 8 and len(set(b.tolist())) == 8 for b in batches)


@pytest.mark.slow
def test_train_writes_checkpoints_and_resume_matches(pairs, tmp_path):
    train, val = pairs
    full = train_retrieval(_options(tmp_path / "full"), train, val, progress=False, log=lambda s: None)
    assert full.epochs_run == 3
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == [1, 1, 2] and all("val_R@1" in r for r in records)
    model = load_retrieval_checkpoint(full.checkpoint)
    meta = model.checkpoint_metadata
    assert meta["stage"] == 2 and meta["epoch"] == 3 and "metrics" in meta
    assert (tmp_path / "full" / "best.safetensors").is_file()

    class Stop(Exception):
        pass

    def stop_after_first(line: str) -> None:
        raise Stop(line)

    with pytest.raises(Stop):  # interrupted right after epoch 1 was committed
        train_retrieval(_options(tmp_path / "cut"), train, val, progress=False, log=stop_after_first)
    with pytest.raises(OptionError, match="--resume"):
        train_retrieval(_options(tmp_path / "cut"), train, val, progress=False, log=lambda s: None)
    resumed = train_retrieval(_options(tmp_path / "cut", resume=True), train, val, progress=False,
                              log=lambda s: None)
    assert resumed.epochs_run == 2
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3
    a, b = load_retrieval_checkpoint(full.checkpoint), load_retrieval_checkpoint(resumed.checkpoint)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, msg=k)
    with pytest.raises(OptionError, match="experts"):  # resuming with other model options is refused
        train_retrieval(_options(tmp_path / "cut", resume=True, experts=False), train, val, progress=False)
    # resuming a finished run does nothing
    again = train_retrieval(_options(tmp_path / "cut", resume=True), train, val, progress=False, log=lambda s: None)
    assert again.epochs_run == 0


def test_a_spent_time_budget_ends_the_epoch_not_only_the_stage(pairs, tmp_path):
    """--minutes: when a stage's share is spent mid-epoch the epoch stops there (it used to run
    to its end at a zero learning rate), and the stage ends after it."""
    train, _ = pairs
    # a budget of 60 microseconds: no training step is that fast, so each stage runs one step
    result = train_retrieval(_options(tmp_path / "b", batch_size=4, minutes=1e-6), train, None, progress=False,
                             log=lambda s: None)
    records = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == [1, 2] and result.epochs_run == 2
    assert all(r["steps"] == 1 < r["epoch_steps"] for r in records)
    assert all(np.isfinite(r["train_loss"]) for r in records)


def test_fine_tuning_starts_from_the_checkpoint(pairs, tmp_path):
    """--init-checkpoint: the run starts at the checkpoint's weights and vocabulary (one epoch at a
    vanishing learning rate ends where it began; a fresh run does not), and a checkpoint of
    another architecture is refused, naming the field."""
    train, val = pairs
    first = train_retrieval(_options(tmp_path / "a", stage1_epochs=1, stage2_epochs=0), train, val, progress=False,
                            log=lambda s: None)
    start = load_retrieval_checkpoint(first.checkpoint)
    still = dict(stage1_epochs=1, stage2_epochs=0, lr=1e-12, seed=5)
    tuned = train_retrieval(_options(tmp_path / "b", init_checkpoint=first.checkpoint, **still), train, val,
                            progress=False, log=lambda s: None)
    fresh = train_retrieval(_options(tmp_path / "c", **still), train, val, progress=False, log=lambda s: None)
    after, other = load_retrieval_checkpoint(tuned.checkpoint), load_retrieval_checkpoint(fresh.checkpoint)
    assert after.tokenizer.vocab == start.tokenizer.vocab
    weights = [k for k, v in start.state_dict().items() if v.dtype.is_floating_point and "running" not in k]
    for k in weights:
        torch.testing.assert_close(after.state_dict()[k], start.state_dict()[k], atol=1e-6, rtol=0, msg=k)
    assert any(not torch.allclose(other.state_dict()[k], start.state_dict()[k]) for k in weights)
    assert after.checkpoint_metadata["options"]["init_checkpoint"] == str(first.checkpoint)
    with pytest.raises(OptionError, match="no_experts|experts"):
        train_retrieval(_options(tmp_path / "d", init_checkpoint=first.checkpoint, experts=False), train, val,
                        progress=False, log=lambda s: None)


def test_options_are_checked(pairs, tmp_path):
    train, _ = pairs
    for bad in (dict(batch_size=1), dict(stage1_epochs=0, stage2_epochs=0), dict(stage1_epochs=-1),
                dict(minutes=0.0)):
        with pytest.raises(OptionError):
            train_retrieval(_options(tmp_path / "x", **bad), train, None, progress=False)
    with pytest.raises(OptionError, match="device"):
        train_retrieval(replace(_options(tmp_path / "x"), device="tpu"), train, None, progress=False)


def test_ablation_variants_keep_the_budget(tmp_path):
    base = _options(tmp_path, stage1_epochs=5, stage2_epochs=2)
    assert ablation_options(base, "full", tmp_path / "f") == replace(base, out_dir=tmp_path / "f")
    assert not ablation_options(base, "no_experts", tmp_path).experts
    assert not ablation_options(base, "keep_orientation", tmp_path).remove_orientation
    one = ablation_options(base, "one_stage", tmp_path)
    assert (one.stage1_epochs, one.stage2_epochs) == (7, 0)
    assert ablation_options(base, "route_all", tmp_path).image_routing == "all"
    assert ablation_options(base, "no_word_head", tmp_path).config_overrides == {"word_head": False}
    with pytest.raises(OptionError):
        ablation_options(base, "bigger", tmp_path)


def test_cli_trains_and_bad_options_exit_2(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, _ = run_cli(["train-retrieval", "--corpus", str(corpus), "--out", str(run), "--preset", "tiny",
                         "--stage1-epochs", "1", "--stage2-epochs", "1", "--batch-size", "8", "--quiet"], capsys)
    assert code == 0, out
    assert (run / "last.safetensors").is_file() and "checkpoint" in out
    meta = load_retrieval_checkpoint(run / "last").checkpoint_metadata
    assert meta["corpus_seed"] == 0 and meta["stage"] == 2
    bad = [
        ["--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")],
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--batch-size", "1"],
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--preset", "huge"],
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--device", "tpu"],
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--minutes", "-1"],
        ["--corpus", str(corpus), "--out", str(run), "--preset", "tiny"],  # a run is there: needs --resume
        ["--corpus", str(corpus), "--out", str(run / "last.json")],  # a file, not a folder
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--threads", "0"],
        ["--corpus", str(corpus), "--out", str(tmp_path / "r"), "--init-checkpoint", str(tmp_path / "none.safetensors")],
    ]
    for args in bad:
        code, _, err = run_cli(["train-retrieval", *args, "--quiet"], capsys)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, err)
