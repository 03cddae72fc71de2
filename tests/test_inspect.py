"""``liquid-edge inspect`` and ``liquid_edge.inspect``: figures checked against the ncps module itself."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

import liquid_edge
from liquid_edge.cli import cli, main
from models import CONFIGS, Config, by_id


def ncps_figures(module: torch.nn.Module, mode: str) -> dict:
    """Parameters, synapses and MACs counted directly on the ncps module."""
    masks = [p.detach().numpy() for name, p in module.named_parameters() if name.endswith("sparsity_mask")]
    stored = sum(p.numel() for name, p in module.named_parameters() if not name.endswith("sparsity_mask"))
    # Each mask gates ff1 and ff2 of its layer (pure mode has no ff2).
    masked_heads = 1 if mode == "pure" else 2
    masked_out = sum(masked_heads * int(np.count_nonzero(mask == 0)) for mask in masks)
    dense_macs = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
    return {
        "parameters": {"stored": stored, "effective": stored - masked_out},
        "synapses": sum(int(mask.sum()) for mask in masks) if masks else None,
        "macs_per_step": {"dense": dense_macs, "sparse": dense_macs - masked_out},
    }


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_summary_matches_the_ncps_module(config: Config, write_checkpoint):
    checkpoint = write_checkpoint(config)
    summary = liquid_edge.inspect(liquid_edge.load(checkpoint.path))
    module = checkpoint.module

    for key, value in ncps_figures(module, config.mode).items():
        assert summary[key] == value, key
    hidden = module.state_size
    assert summary["hidden_size"] == hidden
    assert summary["state_size"] == hidden * (2 if config.mixed_memory else 1)
    assert summary["input_size"] == config.input_size
    # What ncps really returns: for single-layer wirings (FullyConnected, Random) that is the whole layer, not
    # wiring.output_dim.
    with torch.no_grad():
        hx = (torch.zeros(1, hidden),) * 2 if config.mixed_memory else None
        assert summary["output_size"] == module.float()(torch.zeros(1, 1, config.input_size), hx)[0].shape[-1]

    arch = summary["architecture"]
    assert (arch["kind"], arch["mode"], arch["mixed_memory"]) == ("cfc", config.mode, config.mixed_memory)
    assert arch["projection"] == (None if config.proj_size is None else
                                  {"in": module.fc.in_features, "out": config.proj_size})
    if config.wiring is None:
        backbone = [config.backbone_units] * config.backbone_layers
        assert arch["wiring"] is None
        assert arch["cells"] == [{"name": "cfc", "input_size": config.input_size, "units": config.units,
                                  "backbone_units": backbone,
                                  "activation": config.activation if backbone else None, "synapses": None}]
    else:
        assert arch["wiring"] == config.wiring[0]
        assert [cell["units"] for cell in arch["cells"]] == module.rnn_cell.layer_sizes
        assert sum(cell["synapses"] for cell in arch["cells"]) == summary["synapses"]
    assert summary["source"]["path"] == str(checkpoint.path)
    assert summary["source"]["format"] == "state_dict"
    assert summary["source"]["sha256"] == hashlib.sha256(checkpoint.path.read_bytes()).hexdigest()


def test_layer_rows_add_up(write_checkpoint):
    summary = liquid_edge.inspect(liquid_edge.load(write_checkpoint(by_id("autoncp-mixed-proj")).path))
    names = [row["name"] for row in summary["layers"]]
    assert names[:2] == ["memory.input_map", "memory.recurrent_map"] and names[-1] == "projection"
    assert sum(row["macs_sparse"] for row in summary["layers"]) == summary["macs_per_step"]["sparse"]


def test_cli_human_output(write_checkpoint):
    from click.testing import CliRunner

    path = write_checkpoint(by_id("ncp-default")).path
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    summary = liquid_edge.inspect(liquid_edge.load(path))
    lines = result.output.splitlines()
    row = {line.split()[0]: line for line in lines if line.strip()}
    assert "CfC, mode default, wired (NCP)" in row["architecture"]
    params = summary["parameters"]
    assert f"{params['stored']:,} stored, {params['effective']:,} effective" in row["parameters"]
    assert f"{summary['synapses']:,} (mask entries)" in row["synapses"]
    assert any(line.startswith("cell inter") and "synapses" in line for line in lines)
    assert any(line.startswith("cells.2.time_b") for line in lines)   # the per-layer table


def test_cli_json_equals_the_api(write_checkpoint):
    from click.testing import CliRunner

    path = write_checkpoint(by_id("pure-mixed-proj")).path
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == liquid_edge.inspect(liquid_edge.load(path))


def test_cli_options_supply_the_settings(write_checkpoint, capsys):
    checkpoint = write_checkpoint(by_id("no_gate-silu-2layers"))
    bare = checkpoint.path.with_name("bare.pt")
    torch.save(checkpoint.module.state_dict(), bare)
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(bare), "--mode", "no_gate", "--activation", "silu", "--json"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"]["cells"][0]["activation"] == "silu"
    assert summary["parameters"] == liquid_edge.inspect(liquid_edge.load(checkpoint.path))["parameters"]


def test_cli_rejects_an_unknown_mode(write_checkpoint, capsys):
    path = write_checkpoint(by_id("default-lecun")).path
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path), "--mode", "fast"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "'fast'" in error[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"liquid-edge, version {liquid_edge.__version__}"
