"""FLAME model files: tiny FLAME-format pickles made at test time, with fake chumpy and scipy.sparse classes.

The fake modules exist only while pickling; loading happens after they are removed from `sys.modules`, which
proves the loader needs neither chumpy nor scipy.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.base import BadInput, MissingWeights
from pipelines.th.flame import load_flame_model
from pipelines.th.flame.pickle_compat import UnsafePickle, load_pickle
from tests.support.flame_files import fake_modules, write_flame_pickle

NUM_VERTICES, NUM_JOINTS, NUM_SHAPE, NUM_EXPRESSION = 40, 5, 6, 4


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """FLAME-format arrays at toy size (float64 like the released files; faces int)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((NUM_VERTICES, NUM_JOINTS))
    regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    for joint in range(NUM_JOINTS):  # sparse like the real regressor: 3 vertices per joint
        regressor[joint, rng.choice(NUM_VERTICES, 3, replace=False)] = [0.5, 0.25, 0.25]
    return {
        "v_template": rng.normal(size=(NUM_VERTICES, 3)) * 0.1,
        "shapedirs": rng.normal(size=(NUM_VERTICES, 3, NUM_SHAPE + NUM_EXPRESSION)) * 0.01,
        "posedirs": rng.normal(size=(NUM_VERTICES, 3, 9 * (NUM_JOINTS - 1))) * 0.001,
        "J_regressor": regressor,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "f": np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7], [8, 9, 10], [10, 11, 12], [39, 38, 37]], dtype=np.uint32),
        "J": rng.normal(size=(NUM_JOINTS, 3)),
    }


@pytest.mark.parametrize("protocol", [0, 2])
def test_round_trip_without_chumpy_or_scipy(tmp_path: Path, protocol: int) -> None:
    arrays = tiny_arrays()
    path = tmp_path / "generic_model.pkl"
    write_flame_pickle(path, arrays, protocol=protocol)

    data = load_flame_model(path, num_shape_components=NUM_SHAPE)

    np.testing.assert_array_equal(data.v_template, arrays["v_template"].astype(np.float32))
    np.testing.assert_array_equal(data.shapedirs, arrays["shapedirs"].astype(np.float32))
    np.testing.assert_array_equal(data.posedirs, arrays["posedirs"].astype(np.float32))
    np.testing.assert_array_equal(data.J_regressor, arrays["J_regressor"].astype(np.float32))
    np.testing.assert_array_equal(data.weights, arrays["weights"].astype(np.float32))
    np.testing.assert_array_equal(data.faces, arrays["f"].astype(np.int64))
    np.testing.assert_array_equal(data.kintree_table, arrays["kintree_table"])
    assert data.v_template.dtype == np.float32 and data.faces.dtype == np.int64
    np.testing.assert_array_equal(data.shape_dirs, arrays["shapedirs"][:, :, :NUM_SHAPE].astype(np.float32))
    np.testing.assert_array_equal(data.expression_dirs, arrays["shapedirs"][:, :, NUM_SHAPE:].astype(np.float32))
    assert (data.num_shape_components, data.num_expression_components) == (NUM_SHAPE, NUM_EXPRESSION)
    assert data.parents == (-1, 0, 1, 1, 1)
    assert not data.v_template.flags.writeable


def test_loading_needs_neither_chumpy_nor_scipy(tmp_path: Path) -> None:
    """In a fresh interpreter where importing chumpy or scipy fails, the file still loads."""
    path = tmp_path / "generic_model.pkl"
    write_flame_pickle(path, tiny_arrays())
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('chumpy', 'scipy'):\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from pathlib import Path\n"
        "from pipelines.th.flame import load_flame_model\n"
        f"data = load_flame_model(Path({str(path)!r}), num_shape_components={NUM_SHAPE})\n"
        "assert 'scipy' not in sys.modules and 'chumpy' not in sys.modules\n"
        "print(data.num_vertices)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(NUM_VERTICES)


def test_sparse_stand_in_sums_duplicates_and_handles_csr() -> None:
    from pipelines.th.flame.pickle_compat import CsrStandIn, SparseStandIn

    csc = SparseStandIn()
    # 2x3, column 0: rows 0 and 0 again (duplicate, summed); column 2: row 1
    csc.__setstate__(
        {"data": np.array([1.0, 2.0, 5.0]), "indices": [0, 0, 1], "indptr": [0, 2, 2, 3], "_shape": (2, 3)}
    )
    np.testing.assert_array_equal(csc.to_dense(), [[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    csr = CsrStandIn()
    csr.__setstate__({"data": np.array([7.0]), "indices": [2], "indptr": [0, 0, 1], "shape": (2, 3)})
    np.testing.assert_array_equal(csr.to_dense(), [[0.0, 0.0, 0.0], [0.0, 0.0, 7.0]])


def test_released_total_is_split_300_100(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["shapedirs"] = np.zeros((NUM_VERTICES, 3, 400))
    path = tmp_path / "female_model.pkl"
    write_flame_pickle(path, arrays)
    data = load_flame_model(path)
    assert (data.num_shape_components, data.num_expression_components) == (300, 100)


def test_other_totals_need_an_explicit_split(tmp_path: Path) -> None:
    path = tmp_path / "generic_model.pkl"
    write_flame_pickle(path, tiny_arrays())
    with pytest.raises(BadInput, match="num_shape_components"):
        load_flame_model(path)


def test_npz_conversion_loads(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    path = tmp_path / "generic_model.npz"
    np.savez(path, **arrays)
    data = load_flame_model(path, num_shape_components=NUM_SHAPE)
    np.testing.assert_array_equal(data.J_regressor, arrays["J_regressor"].astype(np.float32))


def test_missing_file_names_the_weights_key(tmp_path: Path) -> None:
    with pytest.raises(MissingWeights) as caught:
        load_flame_model(tmp_path / "generic_model.pkl")
    assert caught.value.names == ("flame/generic_model.pkl",)


def test_corrupt_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "male_model.pkl"
    path.write_bytes(b"\x80\x02}q\x00(X\x01\x00")  # truncated pickle
    with pytest.raises(BadInput, match="male_model.pkl"):
        load_flame_model(path)


def test_inconsistent_arrays_are_bad_input(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["weights"] = arrays["weights"][:, :3]
    path = tmp_path / "generic_model.pkl"
    write_flame_pickle(path, arrays)
    with pytest.raises(BadInput, match="weights has shape"):
        load_flame_model(path, num_shape_components=NUM_SHAPE)


class Payload:
    """Unpickling this would call os.mkdir(target)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.target),))


def test_unexpected_global_is_refused_without_running_it(tmp_path: Path) -> None:
    target = tmp_path / "created-by-pickle"
    arrays: dict[str, Any] = dict(tiny_arrays())
    arrays["bs_style"] = Payload(target)
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    with pytest.raises(BadInput, match="refusing to load global") as caught:
        load_flame_model(path, num_shape_components=NUM_SHAPE)
    assert "generic_model.pkl" in str(caught.value)
    assert not target.exists()
    with pytest.raises(UnsafePickle):
        load_pickle(io.BytesIO(pickle.dumps(Payload(target))))


def test_chumpy_expression_without_value_is_bad_input(tmp_path: Path) -> None:
    class FakeReshape:
        def __init__(self) -> None:
            self.a = np.zeros(3)

    arrays: dict[str, Any] = dict(tiny_arrays())
    with fake_modules(**{"chumpy.reordering.Reshape": FakeReshape}):
        arrays["shapedirs"] = FakeReshape()
        payload = pickle.dumps(arrays, protocol=2)
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(payload)
    with pytest.raises(BadInput, match="no stored value 'x'"):
        load_flame_model(path, num_shape_components=NUM_SHAPE)


def test_python2_era_global_names_resolve_without_deprecated_imports() -> None:
    """Old files name numpy.core.multiarray, __builtin__ and copy_reg; numpy 2 would warn on numpy.core."""
    modern = pickle.dumps({"a": np.arange(4.0), "s": {1, 2}}, protocol=0)
    old = (
        modern.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        .replace(b"builtins", b"__builtin__")
        .replace(b"copyreg", b"copy_reg")
    )
    assert b"numpy.core.multiarray" in old
    loaded = load_pickle(io.BytesIO(old))
    np.testing.assert_array_equal(loaded["a"], np.arange(4.0))
    assert loaded["s"] == {1, 2}
