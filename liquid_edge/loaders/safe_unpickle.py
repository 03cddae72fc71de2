"""Read a whole-module PyTorch pickle (``torch.save(model)``) without running any code from it.

A pickle is a program: its ``GLOBAL`` opcodes name any importable object and ``REDUCE`` calls it, which is how
a malicious file runs ``os.system``. This unpickler never imports a name from the file. :meth:`find_class`
answers every name with something of our own:

* names on :data:`_CALLABLE` (dict/set builtins, tensor and parameter rebuilders, numpy array and random-state
  reconstructors) map to small functions defined here that only build data: numpy arrays or inert
  :class:`Record` objects;
* every other name becomes an :class:`OpaqueClass`: pickle may *instantiate* it the way ``torch.save`` stores an
  ``nn.Module`` (``NEWOBJ`` + ``BUILD``), which creates an inert :class:`Record` holding the saved attributes and
  runs nothing of the named class; *calling* it (``REDUCE``, ``INST``, ``OBJ``: how every code-execution payload
  works) raises :class:`ForbiddenGlobal`.

ncps and torch module classes (CfC, CfCCell, Linear, Sequential, ...) thus become Records whose ``state`` is the
module's ``__dict__`` (``_modules``, ``_parameters``, hyper-parameters), which :mod:`.discovery` interprets.
Tensors come back as numpy arrays read from the archive's storage entries.

Only PyTorch's zip format (the default since 1.6) is read here; the legacy format is handled by ``torch.load``
with ``weights_only=True``, which suffices for state_dicts.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from typing import Any, Callable

import numpy as np

from liquid_edge.errors import ModelFormatError


class ForbiddenGlobal(ModelFormatError):
    """The pickle tried to call something that a saved model never needs."""


class Record:
    """An inert stand-in for an object of class ``qualname``: its saved attributes and nothing else."""

    def __init__(self, qualname: str, args: tuple = ()):
        self.qualname = qualname
        self.args = args
        self.state: Any = None
        self.items: dict = {}       # what pickle stores into dict subclasses (e.g. hyper-parameter dicts)
        self.elements: list = []    # what pickle appends to list subclasses

    @property
    def class_name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def __setstate__(self, state: Any) -> None:
        # nn.Module pickles a plain __dict__; objects with __slots__ pickle (dict, slots): keep the dict part.
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
            state = state[0] or state[1]
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.elements.append(value)

    def extend(self, values: Any) -> None:
        self.elements.extend(values)

    def attributes(self) -> dict:
        return self.state if isinstance(self.state, dict) else {}

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


class _NoCallMeta(type):
    def __call__(cls, *args, **kwargs):
        raise ForbiddenGlobal(f"the checkpoint tries to call {cls.qualname}, which a saved model never needs; "
                              "refusing to load it",
                              "if the file is yours, save model.state_dict() with a sidecar JSON instead")


class OpaqueClass(metaclass=_NoCallMeta):
    """Returned for names outside the allow-list: instantiable as data (``__new__``), never callable."""

    qualname = "?"

    def __new__(cls, *args):
        return Record(cls.qualname, args)


def _opaque(qualname: str) -> type:
    return _NoCallMeta(qualname, (OpaqueClass,), {"qualname": qualname})


# --- tensors ---------------------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_ignored) -> np.ndarray:
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise ModelFormatError("a tensor in the checkpoint does not refer to a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or offset < 0:
        raise ModelFormatError("a tensor in the checkpoint has an invalid shape or stride")
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    # A stride-0 view can claim any size; a model tensor never holds more elements than its storage.
    if np.prod(size, dtype=np.float64) > storage.size:
        raise ModelFormatError("a tensor in the checkpoint claims more elements than its storage holds",
                               "the file is corrupted")
    # as_strided does no bounds checking: check that the last element lies inside the storage.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise ModelFormatError("a tensor in the checkpoint reaches past the end of its storage",
                               "the file is truncated or corrupted")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data: Any, *_ignored) -> Any:
    return data


def _rebuild_from_type(func: Callable, _new_type: Any, args: tuple, _state: Any) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise ForbiddenGlobal("the checkpoint rebuilds a tensor through an unexpected function; refusing to load it")
    return func(*args)


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Protocol 2 stores bytes (numpy raw data) as latin-1 text passed through _codecs.encode.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ForbiddenGlobal("the checkpoint calls _codecs.encode unexpectedly; refusing to load it")
    return text.encode("latin1")


def _inert(qualname: str) -> Callable[..., Record]:
    """A callable that records its arguments: numpy dtypes, arrays and random states we never need to rebuild."""
    return lambda *args: Record(qualname, args)


def _builtin_set(items=()):
    return set(items)


def _builtin_frozenset(items=()):
    return frozenset(items)


def _ordered_dict(items=()):
    return collections.OrderedDict(items)


_CALLABLE: dict[tuple[str, str], Callable] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _builtin_set,
    ("builtins", "frozenset"): _builtin_frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
}
for _numpy in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _CALLABLE[(_numpy, "_reconstruct")] = _inert(f"{_numpy}._reconstruct")
for _name in ("dtype", "ndarray"):
    _CALLABLE[("numpy", _name)] = _inert(f"numpy.{_name}")
for _name in ("__randomstate_ctor", "__generator_ctor", "__bit_generator_ctor"):
    _CALLABLE[("numpy.random._pickle", _name)] = _inert(f"numpy.random._pickle.{_name}")
_CALLABLE[("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")] = _inert("numpy.random.SeedSequence")

#: Every name the unpickler maps to a function of its own; documented in docs/loading.md.
ALLOWED_CALLS = tuple(sorted(f"{m}.{n}" for m, n in _CALLABLE))


# The pure-Python unpickler, not the C one: its memo is a dict, so a corrupted memo index cannot make it allocate
# gigabytes (the C unpickler sizes an array by the largest index it sees).
class _RestrictedUnpickler(pickle._Unpickler):
    def __init__(self, data: bytes, storages: Callable[[str, str, int], np.ndarray]):
        super().__init__(io.BytesIO(data))
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol 2 spells builtins the Python 2 way
        if (module, name) in _CALLABLE:
            return _CALLABLE[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _opaque(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise ModelFormatError("the checkpoint refers to an unknown kind of stored object")
        _, storage_type, key, _location, numel = pid
        return self._storages(str(key), storage_type.name, int(numel))


def load_zip_pickle(archive: zipfile.ZipFile) -> Any:
    """Unpickle ``data.pkl`` of a torch zip checkpoint into records, dicts, lists and numpy arrays."""
    names = archive.namelist()
    pickle_name = next((n for n in names if n.endswith("data.pkl") and n.count("/") == 1), None)
    if pickle_name is None:
        raise ModelFormatError("the zip archive has no data.pkl: it is not a PyTorch checkpoint")
    root = pickle_name[: -len("data.pkl")]
    byteorder = archive.read(root + "byteorder").decode() if root + "byteorder" in names else "little"
    order = "<" if byteorder.strip() == "little" else ">"
    cache: dict[str, np.ndarray] = {}

    def storage(key: str, type_name: str, numel: int) -> np.ndarray:
        if key not in cache:
            entry = f"{root}data/{key}"
            if entry not in names:
                raise ModelFormatError(f"storage {key} is missing from the archive", "the file is incomplete")
            cache[key] = _decode_storage(archive.read(entry), _STORAGE_DTYPES[type_name], order, numel, key)
        return cache[key]

    return _RestrictedUnpickler(archive.read(pickle_name), storage).load()


def _decode_storage(raw: bytes, dtype: Any, order: str, numel: int, key: str) -> np.ndarray:
    itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    if len(raw) < numel * itemsize:
        raise ModelFormatError(f"storage {key} holds {len(raw)} bytes, expected {numel * itemsize}",
                               "the file is truncated or corrupted")
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype=order + "u2", count=numel).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(order), count=numel)
