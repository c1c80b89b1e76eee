"""Read old FLAME-era pickles safely: a restricted unpickler with stand-ins for chumpy and scipy.sparse.

Why: the released FLAME files (`generic_model.pkl`, `flame_static_embedding.pkl`, ...) are Python-2 pickles
that name `chumpy.ch.Ch` and `scipy.sparse.csc_matrix`; chumpy does not import on numpy >= 1.24 and scipy is
not a dependency. And a pickle can run any importable callable, so only an explicit allow-list of globals is
resolved; anything else raises `UnsafePickle`.

What the stand-ins do:
* every `chumpy.*` class becomes `ChumpyStandIn`, which keeps the pickled state dict; `resolve_stand_ins`
  then replaces it by `np.asarray(state["x"])` (a plain `Ch` keeps its value under `x`);
* `scipy.sparse` csc/csr matrices become `SparseStandIn`, which rebuilds a dense array from
  (data, indices, indptr, shape) itself;
* optionally (DECA's `landmark_embedding.npy`) pickled torch tensors are rebuilt with `torch.load(weights_only=True)`
  on their storage bytes, then converted to numpy by `resolve_stand_ins`.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import io
import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it could run code); nothing was executed."""


class ChumpyStandIn:
    """Holds the state of a pickled chumpy object (normally a dict with the array under `x`)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> ChumpyStandIn:
        # NOTE: chumpy's own __new__ takes arguments; they are not needed to recover the stored value.
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            merged: dict[str, Any] = {}
            for part in state:
                if isinstance(part, dict):
                    merged.update(part)
            state = merged
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected chumpy state of type {type(state).__name__}")
        self.state = state

    def value(self) -> np.ndarray:
        """The stored array (`state["x"]`); raises if this chumpy object is an expression, not a plain `Ch`."""
        if "x" not in self.state:
            keys = ", ".join(sorted(str(key) for key in self.state))
            raise pickle.UnpicklingError(f"a chumpy object has no stored value 'x' (state keys: {keys})")
        return np.asarray(resolve_stand_ins(self.state["x"]))


class SparseStandIn:
    """Holds the state of a pickled scipy.sparse csc/csr matrix and densifies it without scipy."""

    layout = "csc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected sparse-matrix state of type {type(state).__name__}")
        self.state = state

    def to_dense(self) -> np.ndarray:
        """Dense (rows, cols) array. csc: `indptr` runs over columns and `indices` are rows; csr the reverse.

        Duplicate entries are summed, as scipy does when densifying.
        """
        shape = self.state.get("_shape", self.state.get("shape"))
        if shape is None:
            raise pickle.UnpicklingError("sparse-matrix state has no shape")
        try:
            data = np.asarray(self.state["data"])
            indices = np.asarray(self.state["indices"], dtype=np.int64)
            indptr = np.asarray(self.state["indptr"], dtype=np.int64)
            rows, cols = (int(size) for size in shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise pickle.UnpicklingError(f"sparse-matrix state is incomplete: {exc}") from exc
        major = cols if self.layout == "csc" else rows
        minor = rows if self.layout == "csc" else cols
        if indptr.shape != (major + 1,) or indptr[-1] != len(data) or len(indices) != len(data):
            raise pickle.UnpicklingError("sparse-matrix state is inconsistent (indptr/indices/data lengths)")
        if len(indices) and (indices.min() < 0 or indices.max() >= minor):
            raise pickle.UnpicklingError("sparse-matrix indices fall outside its shape")
        major_of_entry = np.repeat(np.arange(major), np.diff(indptr))
        dense = np.zeros((rows, cols), dtype=data.dtype)
        if self.layout == "csc":
            np.add.at(dense, (indices, major_of_entry), data)
        else:
            np.add.at(dense, (major_of_entry, indices), data)
        return dense


class CsrStandIn(SparseStandIn):
    layout = "csr"


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Stand-in for `_codecs.encode`, which protocol-2 pickles use to carry bytes; only latin-1 is allowed."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickle(f"pickle asks to encode with {encoding!r}; only latin-1 is expected")
    return text.encode("latin-1")


def _load_torch_storage(payload: bytes) -> Any:
    """Rebuild a pickled torch storage from its (legacy `torch.save`) bytes without running pickled code."""
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _numpy_globals() -> dict[str, Any]:
    # NOTE: taken from numpy's own reducers so no deprecated `numpy.core` name is touched on numpy 2.
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    found: dict[str, Any] = {"ndarray": np.ndarray, "dtype": np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[f"{module}._reconstruct"] = reconstruct
        found[f"{module}.scalar"] = scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        found[f"{module}._frombuffer"] = frombuffer
    return found


_SPARSE_MODULES = ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr")


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only the allow-listed globals described in the module docstring."""

    def __init__(self, file: IO[bytes], *, allow_torch_tensors: bool = False) -> None:
        super().__init__(file, encoding="latin1")
        numpy_globals = _numpy_globals()
        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode,
            ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
            ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        for name, value in numpy_globals.items():
            module, _, attribute = name.rpartition(".")
            if module:
                self._allowed[(module, attribute)] = value
        for builtins_name in ("__builtin__", "builtins"):
            self._allowed[(builtins_name, "object")] = object
            self._allowed[(builtins_name, "set")] = set
            self._allowed[(builtins_name, "frozenset")] = frozenset
        for module in _SPARSE_MODULES:
            self._allowed[(module, "csc_matrix")] = SparseStandIn
            self._allowed[(module, "csr_matrix")] = CsrStandIn
        if allow_torch_tensors:
            self._allowed[("torch._utils", "_rebuild_tensor_v2")] = torch._utils._rebuild_tensor_v2
            self._allowed[("torch.storage", "_load_from_bytes")] = _load_torch_storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickle(f"refusing to load global {module}.{name} (not on the allow-list)") from None


def resolve_stand_ins(obj: Any) -> Any:
    """Replace stand-ins (and torch tensors) inside dicts/lists/tuples by numpy arrays, recursively."""
    if isinstance(obj, ChumpyStandIn):
        return obj.value()
    if isinstance(obj, SparseStandIn):
        return obj.to_dense()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy()
    if isinstance(obj, dict):
        return {key: resolve_stand_ins(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [resolve_stand_ins(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(resolve_stand_ins(value) for value in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        resolved = np.empty(obj.shape, dtype=object)
        for index, value in np.ndenumerate(obj):
            resolved[index] = resolve_stand_ins(value)
        return resolved
    return obj


def load_pickle(file: IO[bytes], *, allow_torch_tensors: bool = False) -> Any:
    """Unpickle `file` with `RestrictedUnpickler` (latin-1 for Python-2 strings) and resolve stand-ins.

    Raises `UnsafePickle` for a refused global and other `pickle.UnpicklingError`/`ValueError`/`EOFError`...
    for a corrupt stream; callers translate these into `BadInput` naming the file.
    """
    return resolve_stand_ins(RestrictedUnpickler(file, allow_torch_tensors=allow_torch_tensors).load())


def load_npy_object(path: Path, *, allow_torch_tensors: bool = False) -> Any:
    """The Python object inside a `.npy` holding a 0-d object array (e.g. a dict saved with `np.save`).

    `np.load(allow_pickle=True)` would unpickle without restriction, so the header is parsed with numpy's
    public `numpy.lib.format` readers and the pickled payload goes through `RestrictedUnpickler`.
    """
    with path.open("rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if not dtype.hasobject:
            raise ValueError(f"expected a pickled object array, found dtype {dtype} with shape {shape}")
        array = load_pickle(file, allow_torch_tensors=allow_torch_tensors)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"expected an ndarray in the .npy payload, found {type(array).__name__}")
    return array.item() if array.shape == () else array
