"""Open a checkpoint file: recognise what it is, then read it safely into plain Python data.

State dicts (and anything else made only of tensors, numbers, strings and containers) are read with
``torch.load(weights_only=True)``. When torch refuses because the file pickles classes (``torch.save(model)``),
the zip archive is read again with :mod:`.safe_unpickle`, which runs nothing from the file.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liquid_edge.errors import LiquidEdgeError, ModelFormatError
from liquid_edge.loaders.safe_unpickle import ForbiddenGlobal, load_zip_pickle

_NOT_A_CHECKPOINT_FIX = ("pass a PyTorch checkpoint of an ncps model: torch.save(model.state_dict(), 'model.pt') "
                         "or torch.save(model, 'model.pt')")


@dataclass(frozen=True)
class CheckpointFile:
    path: Path
    sha256: str
    content: Any       # dicts/lists of numpy arrays, numbers, strings; Records for pickled objects


def read_checkpoint(path: Path) -> CheckpointFile:
    """Read ``path``; raise :class:`ModelFormatError` with the reason when it is not a readable checkpoint."""
    data = _read_bytes(path)
    is_zip = data.startswith(b"PK\x03\x04")
    if is_zip:
        _check_torch_zip(path)
    elif not data.startswith(b"\x80"):  # every pickle protocol >= 2 starts with PROTO (0x80)
        raise ModelFormatError(f"{path} {_describe_foreign(data)}, not a PyTorch checkpoint", _NOT_A_CHECKPOINT_FIX)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        content = _torch_load_weights_only(path)
        return CheckpointFile(path, sha256, _to_numpy(content))
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise ModelFormatError(f"{path} cannot be read: {_first_line(exc)}",
                                   "the file is truncated, corrupted or not a PyTorch checkpoint") from None
        if not is_zip:
            raise ModelFormatError(f"{path} pickles objects in PyTorch's legacy (non-zip) format, which cannot be "
                                   "read without running code from it", "save model.state_dict() with a sidecar "
                                   "JSON, or save the model again with a current PyTorch") from None
    # torch refused a pickled class: a whole-module pickle, read with the restricted unpickler.
    try:
        with zipfile.ZipFile(path) as archive:
            content = load_zip_pickle(archive)
    except ForbiddenGlobal as exc:
        raise ForbiddenGlobal(f"{path}: {exc.problem}", exc.fix) from None
    except LiquidEdgeError:
        raise
    except Exception as exc:  # a malformed pickle can fail in many ways; none of them may escape as a traceback
        raise ModelFormatError(f"{path} cannot be unpickled: {_first_line(exc)}",
                               "the file is truncated or corrupted") from None
    return CheckpointFile(path, sha256, content)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelFormatError(f"{path} does not exist", "check the path of the checkpoint")
    if not path.is_file():
        raise ModelFormatError(f"{path} is not a file", "pass the checkpoint file itself")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path} cannot be read: {exc.strerror}") from None
    if not data:
        raise ModelFormatError(f"{path} is empty (0 bytes)", "save the checkpoint again")
    return data


def _check_torch_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        raise ModelFormatError(f"{path} is a truncated or corrupted zip archive",
                               "copy or save the checkpoint again") from None
    if any(n.endswith("/constants.pkl") for n in names):
        raise ModelFormatError(f"{path} is a TorchScript archive (torch.jit.save), not an ncps checkpoint",
                               "save model.state_dict() (with a sidecar JSON) or the model itself with torch.save")
    if any(n.endswith("data.pkl") for n in names):
        return
    if names and all(n.endswith(".npy") for n in names):
        raise ModelFormatError(f"{path} is a NumPy .npz archive, not a PyTorch checkpoint", _NOT_A_CHECKPOINT_FIX)
    raise ModelFormatError(f"{path} is a zip archive without data.pkl, not a PyTorch checkpoint",
                           _NOT_A_CHECKPOINT_FIX)


def _describe_foreign(data: bytes) -> str:
    if data.startswith(b"\x93NUMPY"):
        return "is a NumPy .npy array"
    if data.startswith(b"\x89HDF"):
        return "is an HDF5 file (a Keras model?)"
    if data[4:8] == b"TFL3":
        return "is a TFLite flatbuffer"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "holds unrecognised binary data"
    return "is a text file"


def _torch_load_weights_only(path: Path) -> Any:
    import torch

    try:
        # torch warns on stderr about odd pickle protocols in corrupted files; errors here are ours to report.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # torch reports corrupt archives as RuntimeError, EOFError, ValueError...
        raise ModelFormatError(f"{path} cannot be read: {_first_line(exc)}",
                               "the file is truncated, corrupted or not a PyTorch checkpoint") from None


def _to_numpy(value: Any) -> Any:
    """Replace every torch tensor in a loaded structure by a numpy array (bfloat16 widened to float32)."""
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(item) for item in value)
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

