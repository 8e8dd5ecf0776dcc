"""Read a PyTorch ``.pth`` state dict into numpy arrays without installing torch, and copy its
conv/BN weights into a Keras model (shared by the backbone modules).

Torch is ~800 MB and is only needed to unpickle one weights file, so this reads both of
torch's on-disk formats directly: the legacy stream (torch < 1.6: pickles followed by raw
storages) and the zip archive (``archive/data.pkl`` + ``archive/data/<key>``).
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_DTYPES[name])


class _LazyTensor:
    """A view on a storage, materialised once the storage bytes are known."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), stride

    def materialise(self, arrays: dict) -> np.ndarray:
        flat = arrays[self.storage]
        if not self.size:
            return flat[self.offset].copy()
        strides = [s * flat.itemsize for s in self.stride]
        view = np.lib.stride_tricks.as_strided(flat[self.offset :], self.size, strides)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_args):
    return _LazyTensor(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages  # key -> (dtype, numel or None)

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if module == "torch" and name == "device":
            return str
        # Anything else (code objects, modules) is refused: a weights file needs none of it.
        raise pickle.UnpicklingError(f"unsupported object in weights file: {module}.{name}")

    def persistent_load(self, pid):
        if pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid[0]!r}")
        storage_type, key, _location, numel = pid[1:5]
        if isinstance(storage_type, str):  # zip format writes the dtype differently in new torch
            storage_type = _StorageType(storage_type)
        self.storages[key] = (storage_type.dtype, numel)
        return key


def _load_legacy(f) -> tuple[object, dict]:
    pickle.load(f)  # magic number  # noqa: S301 - plain ints/dicts, trusted package file
    pickle.load(f)  # protocol version  # noqa: S301
    pickle.load(f)  # sys info  # noqa: S301
    storages: dict = {}
    obj = _Unpickler(f, storages).load()
    keys = pickle.load(f)  # noqa: S301
    arrays = {}
    for key in keys:
        dtype, _ = storages[key]
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        arrays[key] = np.frombuffer(f.read(numel * dtype.itemsize), dtype=dtype)
    return obj, arrays


def _load_zip(path: Path) -> tuple[object, dict]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        root = names[0].split("/")[0]
        storages: dict = {}
        with z.open(f"{root}/data.pkl") as f:
            obj = _Unpickler(f, storages).load()
        arrays = {
            key: np.frombuffer(z.read(f"{root}/data/{key}"), dtype=dtype)
            for key, (dtype, _) in storages.items()
        }
    return obj, arrays


def load_state_dict(path: str | Path) -> OrderedDict[str, np.ndarray]:
    """Return ``{name: ndarray}`` for every tensor in a torch state-dict file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        obj, arrays = _load_zip(path)
    else:
        with open(path, "rb") as f:
            obj, arrays = _load_legacy(f)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    return OrderedDict((k, v.materialise(arrays)) for k, v in obj.items())


def load_torch_weights(model, state: dict, prefix_of) -> int:
    """Copy PyTorch conv/BN weights into every conv/BN layer of a Keras ``model``; returns the
    number of layers set. ``prefix_of(layer name)`` gives the layer's state-dict prefix (each
    backbone module has its own map)."""
    from keras import layers  # only training needs Keras; reading a .pth does not

    n = 0
    for layer in model.layers:
        if not isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D
                          | layers.BatchNormalization):
            continue
        prefix = prefix_of(layer.name)
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([state[f"{prefix}.{k}"] for k in
                               ("weight", "bias", "running_mean", "running_var")])
        elif isinstance(layer, layers.DepthwiseConv2D):
            w = state[f"{prefix}.weight"]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            layer.set_weights([w.transpose(2, 3, 0, 1)])
        else:
            w = state[f"{prefix}.weight"]  # (out, in, kh, kw) -> (kh, kw, in, out)
            layer.set_weights([w.transpose(2, 3, 1, 0)])
        n += 1
    return n
