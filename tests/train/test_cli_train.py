"""`smgeo train` end to end on generated data: one process, and DDP under torchrun (gloo, CPU)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smgeo_geo.cli import main

NAME = "SYNTH_DroneAerial"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    main(["synth", "--out", str(root), "--pairs", "12", "--seed", "5", "--reference-size", "256", "--query-size",
          "128", "--splits", "0.5,0.25,0.25", "--no-geotiff", "--quiet"])
    return root


def _args(data_root, out: Path) -> list[str]:
    return ["train", "--data-root", str(data_root), "--data-name", NAME, "--config", "tiny", "--max-epoch", "2",
            "--batch-size", "2", "--max-steps-per-epoch", "2", "--workers", "0", "--out", str(out)]


def test_train_command_checkpoints_and_logs_every_epoch(data_root, tmp_path):
    main(_args(data_root, tmp_path / "run"))
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for name in ("last", "best"):
        assert (tmp_path / "run" / f"{name}.safetensors").is_file() and (tmp_path / "run" / f"{name}.json").is_file()
    # rerunning the finished command resumes and has nothing left to do
    main(_args(data_root, tmp_path / "run"))
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_train_on_two_datasets_together(data_root, tmp_path, capsys):
    """``--data-name`` repeated: generated towns and, e.g., real-texture pairs in one training set."""
    main(["synth", "--out", str(data_root), "--name", "OTHER", "--pairs", "8", "--seed", "6", "--reference-size", "256",
          "--query-size", "128", "--splits", "0.5,0.5,0", "--no-geotiff", "--quiet"])
    main(["train", "--data-root", str(data_root), "--data-name", NAME, "--data-name", "OTHER", "--config", "tiny",
          "--max-epoch", "1", "--batch-size", "2", "--max-steps-per-epoch", "1", "--workers", "0",
          "--out", str(tmp_path / "both")])
    out = capsys.readouterr().out
    assert f"on {NAME} + OTHER: 10 train / 7 val pairs" in out  # 6 + 4 train, 3 + 4 val
    assert json.loads((tmp_path / "both" / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1


def _free_port() -> int:
    """A TCP port nothing listens on now (a fixed one may be held by another job on the machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_under_torchrun_with_two_processes(data_root, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "smgeo_geo.cli", *_args(data_root, tmp_path / "ddp"), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2, "only rank 0 writes the log, once per epoch"
    assert (tmp_path / "ddp" / "last.safetensors").is_file()


def test_a_device_that_is_not_there_is_refused_before_the_data_is_read(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "run"), "--device", "cuda:7"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "cuda:7" in err[0]
    assert not (tmp_path / "run").exists()


def test_init_checkpoint_starts_from_its_weights_and_config(data_root, tmp_path):
    """Fine-tuning: with a vanishing learning rate the run ends where the given checkpoint began."""
    from smgeo_model import load_checkpoint

    main(_args(data_root, tmp_path / "base"))
    base = tmp_path / "base" / "last.safetensors"
    main([*_args(data_root, tmp_path / "tuned"), "--init-checkpoint", str(base), "--lr", "1e-12",
          "--max-epoch", "1", "--config", "paper"])  # --config is ignored: the checkpoint's config is used
    start, end = load_checkpoint(base), load_checkpoint(tmp_path / "tuned" / "last.safetensors")
    assert end.config == start.config
    options = json.loads((tmp_path / "tuned" / "best.json").read_text())["metadata"]["options"]
    assert options["init_checkpoint"] == str(base)  # where the weights came from
    for (name, a), (_, b) in zip(start.named_parameters(), end.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_minutes_stops_the_run_after_the_epoch_that_spent_them(data_root, tmp_path):
    main([*_args(data_root, tmp_path / "run"), "--max-epoch", "3", "--minutes", "0.0001"])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and (tmp_path / "run" / "last.safetensors").is_file()


def test_a_bad_init_checkpoint_is_named_before_anything_is_written(data_root, tmp_path, capsys):
    bad = tmp_path / "weights.safetensors"
    bad.write_text("not a checkpoint")
    with pytest.raises(SystemExit) as exc:
        main([*_args(data_root, tmp_path / "run"), "--init-checkpoint", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code != 0 and len(err) == 1 and "weights" in err[0]
    assert not (tmp_path / "run").exists()
