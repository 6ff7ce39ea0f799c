"""Checkpoint I/O: exact round trip, no pickle, clear mismatch errors, Swin-T weights."""

import json
import re

import pytest
import timm
import torch
from safetensors.torch import save_file

from smgeo_model import (
    CheckpointError, build_model, get_config, load_checkpoint, load_swin_weights, save_checkpoint,
)
from smgeo_model.checkpoint import read_tensors


class CodeCarrier:
    """Unpickling this runs code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def trained_tiny():
    torch.manual_seed(1)
    model = build_model("tiny")
    model.train()  # one step so BatchNorm statistics and weights leave their initial values
    out = model(torch.rand(2, 3, 64, 64), torch.tensor([[3.0, 4.0], [30.0, 40.0]]), torch.rand(2, 3, 128, 128))
    out["heatmap"].mean().backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    return model.eval()


def test_save_load_round_trip_reproduces_outputs_exactly(tmp_path, trained_tiny):
    path = save_checkpoint(trained_tiny, tmp_path / "ckpt" / "tiny", metadata={"note": "test"})
    assert path.name == "tiny.safetensors" and (tmp_path / "ckpt" / "tiny.json").is_file()
    loaded = load_checkpoint(tmp_path / "ckpt" / "tiny.safetensors")
    assert loaded.checkpoint_metadata == {"note": "test"}
    torch.manual_seed(2)
    args = (torch.rand(1, 3, 64, 96), torch.tensor([[10.0, 20.0]]), torch.rand(1, 3, 128, 160))
    with torch.inference_mode():
        a, b = trained_tiny(*args), loaded(*args)
    assert torch.equal(a["heatmap"], b["heatmap"]) and torch.equal(a["boxes"], b["boxes"])


def test_pickle_with_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker.txt"
    bad = tmp_path / "swin_tiny.pth"
    torch.save({"model": {"patch_embed.proj.weight": torch.zeros(1)}, "x": CodeCarrier(marker)}, bad)
    model = build_model("tiny")
    with pytest.raises(CheckpointError, match="swin_tiny.pth could not be loaded as plain weights"):
        load_swin_weights(model, bad)
    assert not marker.exists()


def test_checkpoint_of_another_config_names_the_mismatch(tmp_path, trained_tiny):
    save_checkpoint(trained_tiny, tmp_path / "tiny")
    with pytest.raises(CheckpointError, match=r"another config \(.*embed_dim: checkpoint 32 vs requested 96"):
        load_checkpoint(tmp_path / "tiny", config="paper")
    # a config file edited so that the tensors no longer fit
    meta = json.loads((tmp_path / "tiny.json").read_text())
    meta["config"]["neck_dim"] = 128
    (tmp_path / "tiny.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"does not match the model: .*shape"):
        load_checkpoint(tmp_path / "tiny")


def test_missing_or_broken_files_give_one_clear_error(tmp_path, trained_tiny):
    with pytest.raises(CheckpointError, match="nothing.json not found"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    save_checkpoint(trained_tiny, tmp_path / "t")
    (tmp_path / "t.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="t.safetensors is not a readable safetensors file"):
        load_checkpoint(tmp_path / "t")


def _timm_swin(cfg_name: str) -> torch.nn.Module:
    cfg = get_config(cfg_name)
    torch.manual_seed(3)
    return timm.models.swin_transformer.SwinTransformer(
        embed_dim=cfg.embed_dim, depths=cfg.depths, num_heads=cfg.num_heads, window_size=cfg.window_size,
        num_classes=10,
    )


def _to_microsoft_names(sd: dict) -> dict:
    """timm -> original Microsoft layout: downsample at the end of the previous stage."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k)
        out[k.replace("head.fc.", "head.")] = v
    return out


def _check_backbone_matches(model, swin_sd):
    own = model.backbone.state_dict()
    cfg = model.config
    for k, v in swin_sd.items():
        m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.(fc[12])\.(weight|bias)", k)
        if m and int(m.group(2)) in cfg.moe_blocks(int(m.group(1))):
            prefix = f"layers.{m.group(1)}.blocks.{m.group(2)}.mlp.experts"
            hidden = own[f"{prefix}.0.fc1.weight"].shape[0]
            n = v.shape[0] // hidden if m.group(3) == "fc1" and m.group(4) == "weight" else None
            if n:  # expert i holds hidden slice i mod n of fc1, and fc2's matching columns x n
                for i in range(cfg.moe_num_experts):
                    s = slice((i % n) * hidden, (i % n + 1) * hidden)
                    torch.testing.assert_close(own[f"{prefix}.{i}.fc1.weight"], v[s])
                    fc2 = swin_sd[k.replace("fc1.weight", "fc2.weight")]
                    torch.testing.assert_close(own[f"{prefix}.{i}.fc2.weight"], fc2[:, s] * n)
        elif k in own and not k.startswith("head"):
            torch.testing.assert_close(own[k], v, msg=k)


def test_standard_swin_t_checkpoint_loads_into_paper_model(tmp_path):
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    sd = swin.state_dict()
    torch.save(sd, tmp_path / "swin_tiny_patch4_window7_224.pth")
    model = build_model("paper", swin_weights=tmp_path / "swin_tiny_patch4_window7_224.pth")
    _check_backbone_matches(model, sd)


@pytest.mark.parametrize("layout", ["timm-safetensors", "microsoft-pth"])
def test_swin_checkpoint_layouts(tmp_path, layout):
    swin = _timm_swin("tiny")
    sd = {k: v.clone() for k, v in swin.state_dict().items()}
    if layout == "timm-safetensors":
        path = tmp_path / "swin.safetensors"
        save_file(sd, str(path))
    else:
        path = tmp_path / "swin.pth"
        torch.save({"model": _to_microsoft_names(sd)}, path)
    model = build_model("tiny")
    report = load_swin_weights(model, path)
    _check_backbone_matches(model, sd)
    assert "patch_embed.proj.weight" in report.loaded
    # what stays at initialisation is only what SMGeo adds to Swin
    assert all(k.startswith("norm_s16") or ".gates." in k for k in report.not_in_file), report.not_in_file


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    swin = _timm_swin("paper")  # embed 96: does not fit the tiny model's embed 32
    save_file(swin.state_dict(), str(tmp_path / "swin_t.safetensors"))
    with pytest.raises(CheckpointError, match=r"swin_t.safetensors does not match the model: "):
        load_swin_weights(build_model("tiny"), tmp_path / "swin_t.safetensors")


def test_read_tensors_refuses_non_weight_files(tmp_path):
    (tmp_path / "list.pth").write_bytes(b"")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        read_tensors(tmp_path / "list.pth")
