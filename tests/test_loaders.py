"""Checkpoint loading: where modules hide, where settings come from, safe unpickling, and every bad file."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import liquid_edge
from conftest import sidecar_settings
from liquid_edge.cli import main
from liquid_edge.errors import ConfigError, LiquidEdgeError, ModelFormatError
from liquid_edge.ir_io import model_to_json
from liquid_edge.loaders.config import sidecar_path
from liquid_edge.loaders.safe_unpickle import ForbiddenGlobal, load_zip_pickle
from models import CONFIGS, DENSE, build, by_id

DENSE = by_id("no_gate-silu-2layers")   # neither mode nor activation can be read from its tensors
OTHER = by_id("default-lecun")


class Encoder(torch.nn.Module):
    """A user's own module around a CfC (not importable by the loader: it must never need to be)."""

    def __init__(self, cfc: torch.nn.Module):
        super().__init__()
        self.inp = torch.nn.Linear(4, 5)
        self.cfc = cfc


class Outer(torch.nn.Module):
    def __init__(self, cfc: torch.nn.Module):
        super().__init__()
        self.encoder = Encoder(cfc)
        self.conv = torch.nn.Conv1d(2, 2, 3)


class Fleet(torch.nn.Module):
    def __init__(self, *cfcs: torch.nn.Module):
        super().__init__()
        self.device_models = torch.nn.ModuleList(cfcs)


class HyperParameters(dict):
    """Like Lightning's AttributeDict: a dict subclass, which torch's weights_only loader refuses."""


class Payload:
    """Unpickling this runs ``function(argument)``: the classic pickle attack."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def assert_same_model(actual, expected, ignore: tuple[str, ...] = ()) -> None:
    """Same structure and bit-identical arrays (names, sources and the ``ignore`` entries may differ)."""
    strip = ("name", "source", *ignore)
    assert {k: v for k, v in model_to_json(actual).items() if k not in strip} == \
        {k: v for k, v in model_to_json(expected).items() if k not in strip}
    actual_arrays, expected_arrays = dict(actual.arrays()), dict(expected.arrays())
    assert actual_arrays.keys() == expected_arrays.keys()
    for key, array in expected_arrays.items():
        np.testing.assert_array_equal(actual_arrays[key], array, err_msg=key)


def save(obj, path: Path, settings: dict | None = None) -> Path:
    torch.save(obj, path)
    if settings is not None:
        sidecar_path(path).write_text(json.dumps(settings))
    return path


@pytest.fixture
def reference_model(write_checkpoint):
    """The IR of DENSE loaded the plain way (state dict + sidecar), and its ncps module."""
    checkpoint = write_checkpoint(DENSE)
    return liquid_edge.load(checkpoint.path), checkpoint.module


# --- where the module is ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout, prefix", [
    ("nested", "encoder.cfc"), ("module_list", "device_models.0"), ("sequential", "1"), ("data_parallel", "module"),
])
def test_state_dict_nested_under_user_modules(layout, prefix, reference_model, tmp_path):
    expected, cfc = reference_model
    state = {
        "nested": lambda: Outer(cfc).state_dict(),
        "module_list": lambda: Fleet(cfc).state_dict(),
        "sequential": lambda: torch.nn.Sequential(torch.nn.Linear(3, 5), cfc).state_dict(),
        "data_parallel": lambda: {f"module.{k}": v for k, v in cfc.state_dict().items()},
    }[layout]()
    model = liquid_edge.load(save(state, tmp_path / "m.pt", sidecar_settings(DENSE)))
    assert_same_model(model, expected)
    assert model.source.module == prefix and model.source.format == "state_dict"


@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict"])
def test_state_dict_inside_training_checkpoint(wrapper, reference_model, tmp_path):
    expected, cfc = reference_model
    optimizer = torch.optim.Adam(cfc.parameters())
    checkpoint = {wrapper: Outer(cfc).state_dict(), "epoch": 7, "optimizer_state_dict": optimizer.state_dict()}
    model = liquid_edge.load(save(checkpoint, tmp_path / "ckpt.pt", sidecar_settings(DENSE)))
    assert_same_model(model, expected)
    assert model.source.module == "encoder.cfc"


def test_lightning_style_checkpoint(reference_model, tmp_path):
    expected, cfc = reference_model
    checkpoint = {
        "state_dict": {f"model.{key}": value for key, value in cfc.state_dict().items()},
        "hyper_parameters": HyperParameters(mode="no_gate", activation="silu", learning_rate=0.1),
        "optimizer_states": [torch.optim.Adam(cfc.parameters()).state_dict()],
        "epoch": 2,
    }
    path = save(checkpoint, tmp_path / "last.ckpt")
    with pytest.raises(ConfigError, match="its 'hyper_parameters' entry says mode 'no_gate' and activation 'silu'"):
        liquid_edge.load(path)
    model = liquid_edge.load(path, mode="no_gate", activation="silu")
    assert_same_model(model, expected)
    assert (model.source.module, model.source.format) == ("model", "state_dict")


def test_several_modules_need_module_option(write_checkpoint, tmp_path):
    first, second = build(OTHER), build(DENSE)
    settings = {"modules": {"device_models.0": sidecar_settings(OTHER), "device_models.1": sidecar_settings(DENSE)}}
    path = save(Fleet(first, second).state_dict(), tmp_path / "fleet.pt", settings)

    with pytest.raises(ConfigError, match=r"2 ncps modules: device_models\.0 \(CfC\), device_models\.1 \(CfC\)"):
        liquid_edge.load(path)
    with pytest.raises(ConfigError, match=r"no ncps module 'device_models\.7'.*device_models\.0"):
        liquid_edge.load(path, module="device_models.7")
    assert_same_model(liquid_edge.load(path, module="device_models.1"),
                      liquid_edge.load(write_checkpoint(DENSE).path))
    assert_same_model(liquid_edge.load(path, module="device_models.0"),
                      liquid_edge.load(write_checkpoint(OTHER).path))


def test_sidecar_for_a_module_that_does_not_exist(reference_model, tmp_path):
    _, cfc = reference_model
    settings = {"modules": {"encoder.cfx": sidecar_settings(DENSE)}}
    with pytest.raises(ConfigError, match=r"configures module 'encoder\.cfx'.*encoder\.cfc"):
        liquid_edge.load(save(Outer(cfc).state_dict(), tmp_path / "m.pt", settings))


# --- where the settings come from --------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["options", "sidecar", "liquid_edge_config", "per_module_sidecar",
                                    "module_pickle"])
def test_every_config_source(source, reference_model, tmp_path):
    expected, cfc = reference_model
    settings = sidecar_settings(DENSE)
    path, kwargs = tmp_path / "m.pt", {}
    if source == "options":
        save(cfc.state_dict(), path)
        kwargs = settings
    elif source == "sidecar":
        save(cfc.state_dict(), path, settings)
    elif source == "per_module_sidecar":
        save(Outer(cfc).state_dict(), path, {"modules": {"encoder.cfc": settings}})
    elif source == "module_pickle":
        save(cfc, path)
    else:
        save({"state_dict": cfc.state_dict(), source: settings}, path)
    model = liquid_edge.load(path, **kwargs)
    assert_same_model(model, expected)
    assert (model.mode, model.cells[0].activation) == ("no_gate", "silu")


def test_agreeing_sources_are_fine(reference_model, tmp_path):
    expected, cfc = reference_model
    path = save({"model": cfc.state_dict(), "liquid_edge_config": sidecar_settings(DENSE)}, tmp_path / "m.pt",
                sidecar_settings(DENSE))
    assert_same_model(liquid_edge.load(path, module="model", mode="no_gate", activation="silu"), expected)


@pytest.mark.parametrize("entry", ["config", "hparams", "hyper_parameters"])
def test_generic_config_dicts_are_suggested_never_taken(reference_model, tmp_path, entry):
    """A training framework's config describes the user's whole model (its 'activation' may be the encoder's):
    the loader quotes it in the error and takes it only when the user confirms it."""
    expected, cfc = reference_model
    path = save({"state_dict": cfc.state_dict(), entry: {"mode": "train", "activation": "silu", "lr": 0.01}},
                tmp_path / "m.pt")
    with pytest.raises(ConfigError) as error:
        liquid_edge.load(path)
    message = str(error.value)
    assert "'default' or 'no_gate' nor which backbone activation" in message
    assert f"its '{entry}' entry says activation 'silu', which may describe another part of the model" in message
    assert "mode 'train'" not in message and "m.pt.json" in message
    assert_same_model(liquid_edge.load(path, mode="no_gate", activation="silu"), expected)


@pytest.mark.parametrize("case, pattern", [
    ("option_vs_sidecar", r"conflicting mode: 'default' from the mode setting, 'no_gate' from sidecar m\.pt\.json"),
    ("sidecar_vs_checkpoint", r"conflicting activation: 'silu' from sidecar .*'relu' from checkpoint entry "
                              r"'liquid_edge_config'"),
    ("option_vs_pickle", r"conflicting activation: 'gelu' from the activation setting, 'silu' from the pickled"),
    ("top_vs_module", r"sets mode to 'no_gate' at top level and to 'default' for module 'encoder\.cfc'"),
])
def test_conflicting_sources(case, pattern, reference_model, tmp_path):
    _, cfc = reference_model
    settings, path = sidecar_settings(DENSE), tmp_path / "m.pt"
    kwargs = {}
    if case == "option_vs_sidecar":
        save(cfc.state_dict(), path, settings)
        kwargs = {"mode": "default"}
    elif case == "sidecar_vs_checkpoint":
        save({"state_dict": cfc.state_dict(), "liquid_edge_config": {"activation": "relu"}}, path, settings)
    elif case == "option_vs_pickle":
        save(cfc, path)
        kwargs = {"activation": "gelu"}
    else:
        save(Outer(cfc).state_dict(), path, {**settings, "modules": {"encoder.cfc": {"mode": "default"}}})
    with pytest.raises(ConfigError, match=pattern):
        liquid_edge.load(path, **kwargs)


@pytest.mark.parametrize("config_id, given, pattern", [
    ("default-lecun", {}, r"'default' or 'no_gate' nor which backbone activation.*mode=default\|no_gate and "
                          r"activation=lecun_tanh\|silu\|relu\|tanh\|gelu"),
    ("default-lecun", {"mode": "default"}, r"backbone activation.*activation=lecun_tanh\|silu\|relu\|tanh\|gelu"),
    ("pure-lecun", {}, r"backbone activation.*activation=lecun_tanh\|silu\|relu\|tanh\|gelu"),
    ("autoncp-default", {}, r"'default' or 'no_gate'"),
    ("default-lecun", {"mode": "pure"}, r"mode 'pure' was given but the checkpoint is not a pure-mode CfC"),
    ("pure-lecun", {"mode": "default"}, r"pure-mode CfC \(it has w_tau\) but mode 'default' was given"),
])
def test_ambiguity_is_an_error_listing_choices(config_id, given, pattern, tmp_path):
    path = save(build(by_id(config_id)).state_dict(), tmp_path / "m.pt")
    with pytest.raises(ConfigError, match=pattern):
        liquid_edge.load(path, **given)


@pytest.mark.parametrize("config_id, given", [
    ("default-nobackbone", {"mode": "default"}),   # no backbone: the activation is irrelevant
    ("pure-nobackbone", {}),                       # pure mode shows in the tensors
    ("autoncp-no_gate", {"mode": "no_gate"}),       # wired cells have no backbone
])
def test_settings_that_shapes_tell_are_not_required(config_id, given, write_checkpoint, tmp_path):
    path = save(build(by_id(config_id)).state_dict(), tmp_path / "m.pt")
    model = liquid_edge.load(path, **given)
    # Only a sidecar or a pickle can name the wiring kind; the layers and masks come from the tensors.
    assert_same_model(model, liquid_edge.load(write_checkpoint(by_id(config_id)).path), ignore=("wiring",))
    assert model.wiring is None or model.wiring.kind == "unknown"


@pytest.mark.parametrize("sidecar, pattern", [
    ('{"mode": "fast"}', r"gives mode 'fast' \(use one of default, no_gate, pure\)"),
    ('{"mdoe": "default"}', r"unknown key 'mdoe'"),
    ('{"mode": "default",', r"is not valid JSON"),
    ('["default"]', r"must be a JSON object"),
    ('{"mode": "default", "activation": "silu", "wiring": "AutoNCP"}', r"wiring 'AutoNCP' was given but .* dense"),
])
def test_invalid_sidecar(sidecar, pattern, reference_model, tmp_path):
    _, cfc = reference_model
    path = save(cfc.state_dict(), tmp_path / "m.pt")
    sidecar_path(path).write_text(sidecar)
    with pytest.raises(ConfigError, match=pattern):
        liquid_edge.load(path)


@pytest.mark.parametrize("damage, pattern", [
    ("missing", r"tensor rnn_cell\.time_a\.bias is missing \(module encoder\.cfc of .*m\.pt\)"),
    ("reshaped", r"tensor cells\.0\.ff2\.weight has shape \(12, 15\), expected \(12, 16\) \(module encoder\.cfc"),
])
def test_damaged_tensors_are_named(damage, pattern, reference_model, tmp_path):
    _, cfc = reference_model
    state = Outer(cfc).state_dict()
    if damage == "missing":
        del state["encoder.cfc.rnn_cell.time_a.bias"]
    else:
        state["encoder.cfc.rnn_cell.ff2.weight"] = state["encoder.cfc.rnn_cell.ff2.weight"][:, :15]
    with pytest.raises(ModelFormatError, match=pattern):
        liquid_edge.load(save(state, tmp_path / "m.pt", sidecar_settings(DENSE)))


# --- whole-module pickles -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_module_pickle_gives_the_state_dict_model(config, write_checkpoint):
    pickled = liquid_edge.load(write_checkpoint(config, whole_module=True).path)
    assert_same_model(pickled, liquid_edge.load(write_checkpoint(config).path))
    assert pickled.source.format == "module_pickle"
    if config.wiring is not None:
        assert pickled.wiring.kind == config.wiring[0]


@pytest.mark.parametrize("wrap, prefix", [
    (lambda cfc: Outer(cfc), "encoder.cfc"),
    (lambda cfc: torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), cfc), "2"),
    (lambda cfc: {"model": Fleet(cfc), "epoch": 3}, "model.device_models.0"),
])
def test_user_module_pickle_is_read_without_its_classes(wrap, prefix, reference_model, tmp_path):
    expected, cfc = reference_model
    model = liquid_edge.load(save(wrap(cfc), tmp_path / "user.pt"))
    assert_same_model(model, expected)
    assert (model.source.module, model.source.format) == (prefix, "module_pickle")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("whole_module", [False, True])
def test_half_precision_checkpoints(dtype, whole_module, tmp_path):
    cfc = build(DENSE).to(dtype)
    path = save(cfc if whole_module else cfc.state_dict(), tmp_path / "half.pt", None if whole_module else
                sidecar_settings(DENSE))
    model = liquid_edge.load(path)
    np.testing.assert_array_equal(model.cells[0].ff1.weight, cfc.rnn_cell.ff1.weight.detach().float().numpy())


def test_pickled_views_and_shared_storage(reference_model, tmp_path):
    """A transposed (non-contiguous) parameter and weights tied to one storage rebuild exactly."""
    _, cfc = reference_model
    with torch.no_grad():
        ff2 = cfc.rnn_cell.ff2.weight
        cfc.rnn_cell.ff2.weight = torch.nn.Parameter(ff2.detach().T.contiguous().T)
        cfc.rnn_cell.time_b.weight = cfc.rnn_cell.time_a.weight
    assert not cfc.rnn_cell.ff2.weight.is_contiguous()
    model = liquid_edge.load(save(cfc, tmp_path / "views.pt"))
    np.testing.assert_array_equal(model.cells[0].ff2.weight, ff2.detach().numpy())
    np.testing.assert_array_equal(model.cells[0].time_b.weight, model.cells[0].time_a.weight)


# --- the restricted unpickler refuses code ----------------------------------------------------------------------

def _payloads(marker: Path) -> dict:
    command = f"touch {marker}"
    write = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system": Payload(os.system, command),
        "builtins.eval": Payload(eval, write),
        "builtins.exec": Payload(exec, write),
        "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"])
@pytest.mark.parametrize("placement", ["top", "inside_cfc"])
def test_forbidden_globals_are_refused(name, placement, reference_model, tmp_path):
    _, cfc = reference_model
    marker = tmp_path / "MARKER"
    payload = _payloads(marker)[name]
    if placement == "inside_cfc":
        cfc.extra_attribute = payload
        obj = cfc
    else:
        obj = {"state_dict": cfc.state_dict(), "hook": payload}
    path = save(obj, tmp_path / "evil.pt")
    with pytest.raises(ForbiddenGlobal, match=r"evil\.pt: the checkpoint tries to call .*refusing to load it"):
        liquid_edge.load(path, mode="no_gate", activation="silu")
    assert not marker.exists()


def _zip_with_pickle(data: bytes) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


@pytest.mark.parametrize("opcode", ["REDUCE", "INST", "OBJ"])
def test_every_calling_opcode_is_refused(opcode, tmp_path):
    marker = tmp_path / "MARKER"
    command = f"touch {marker}"
    data = {
        "REDUCE": b"\x80\x02cos\nsystem\n" + _unicode(command) + b"\x85R.",
        "INST": b"(S" + repr(command).encode() + b"\nios\nsystem\n.",       # protocol 0
        "OBJ": b"\x80\x02(cos\nsystem\n" + _unicode(command) + b"o.",
    }[opcode]
    with pytest.raises(ForbiddenGlobal, match="os.system"):
        load_zip_pickle(_zip_with_pickle(data))
    assert not marker.exists()


def test_unknown_classes_become_inert_records():
    """NEWOBJ of an unknown class (how a user's module is pickled) builds a record; nothing of the class runs."""
    data = b"\x80\x02cos\nsystem\n)\x81}" + _unicode("a") + b"K\x01sb."   # os.system.__new__(); BUILD {a: 1}
    record = load_zip_pickle(_zip_with_pickle(data))
    assert (record.qualname, record.state) == ("os.system", {"a": 1})


@pytest.mark.parametrize("whole_module", [False, True])
def test_corrupted_pickles_fail_cleanly(whole_module, tmp_path):
    """Random byte flips in data.pkl either still load or raise a LiquidEdgeError: never anything else."""
    source = save(build(OTHER) if whole_module else build(OTHER).state_dict(), tmp_path / "good.pt")
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    pickle_name = next(name for name in entries if name.endswith("data.pkl"))
    rng = np.random.default_rng(4)
    refused = 0
    for trial in range(40):
        data = np.frombuffer(entries[pickle_name], dtype=np.uint8).copy()
        data[rng.integers(data.size, size=3)] = rng.integers(256, size=3, dtype=np.uint8)
        path = tmp_path / f"corrupt{trial}.pt"
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in entries.items():
                archive.writestr(name, data.tobytes() if name == pickle_name else content)
        try:
            liquid_edge.load(path, mode="default", activation="lecun_tanh")
        except LiquidEdgeError:
            refused += 1
    assert refused > 10   # the corruption does bite; any other exception type would have failed the test


# --- bad files through the command line ---------------------------------------------------------------------------

def _write_bad_file(case: str, path: Path) -> str:
    """Write the bad file of ``case`` to ``path``; return the pattern its error message must match."""
    if case == "missing":
        return "does not exist"
    if case == "empty":
        path.write_bytes(b"")
        return r"is empty \(0 bytes\)"
    if case == "truncated":
        torch.save(build(OTHER), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return "truncated or corrupted zip archive"
    if case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
        return "unrecognised binary data, not a PyTorch checkpoint"
    if case == "npz":
        with path.open("wb") as handle:
            np.savez(handle, a=np.zeros(3))
        return r"NumPy \.npz archive, not a PyTorch checkpoint"
    if case == "text":
        path.write_text("weights = [1, 2, 3]\n")
        return "is a text file, not a PyTorch checkpoint"
    if case == "no_ncps_module":
        torch.save({"encoder.weight": torch.zeros(2, 2), "epoch": 3}, path)
        return r"holds no ncps CfC module \(top-level keys: encoder\.weight, epoch\)"
    if case == "forbidden_global":
        torch.save({"x": Payload(os.system, f"touch {path.parent / 'MARKER'}")}, path)
        return "tries to call posix.system.*refusing to load it"
    if case == "torchscript":
        cell = build(OTHER).rnn_cell
        with warnings.catch_warnings():   # TorchScript is deprecated, but users still have such files
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.trace(cell, (torch.zeros(1, 5), torch.zeros(1, 12), torch.ones(1, 1))), path)
        return "is a TorchScript archive"
    if case == "legacy_pickle":
        torch.save(build(OTHER), path, _use_new_zipfile_serialization=False)
        return r"legacy \(non-zip\) format"
    if case == "ltc":
        from ncps.torch import LTC
        torch.save(LTC(3, 5), path)
        return "LTC is not supported yet"
    assert case == "non_finite"
    state = build(OTHER).state_dict()
    state["rnn_cell.ff1.weight"][1, 2] = float("nan")
    save(state, path, sidecar_settings(OTHER))
    return r"tensor rnn_cell\.ff1\.weight in .* holds 1 non-finite value"


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "random", "npz", "text", "no_ncps_module",
                                  "forbidden_global", "torchscript", "legacy_pickle", "ltc", "non_finite"])
def test_bad_files_give_one_line_errors(case, tmp_path):
    path = tmp_path / f"{case}.pt"
    pattern = _write_bad_file(case, path)
    result = subprocess.run([sys.executable, "-m", "liquid_edge", "inspect", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "MARKER").exists()


def test_option_messages_name_the_caller_s_spelling(write_checkpoint, capsys):
    path = write_checkpoint(DENSE).path
    with pytest.raises(ConfigError, match=r"^the mode setting gives mode 'bogus'"):
        liquid_edge.load(path, mode="bogus")
    with pytest.raises(SystemExit):
        main(["inspect", str(path), "--mode", "pure", "--activation", "relu"])
    assert "the --mode and --activation options" in capsys.readouterr().err
