"""The generated float32 C, built for the host and driven through ctypes, against the float64 reference.

Every configuration of tests/models.py is emitted into one folder (plus the dense fallback of every wired one)
and linked into one shared library, once per session.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from generated_c import LARGE_WIRED, Generated, is_wired, model_ir, write_libraries
from liquid_edge import reference
from liquid_edge.data import random_sequences
from liquid_edge.emit.c_library import emit_c_library
from liquid_edge.runners.host import CModel, build_shared_library, load_library
from models import CONFIGS

TOLERANCE = 1e-5  # docs/numerics-float.md
STEPS = 200
SEQUENCES = 3
WIRED = [c for c in CONFIGS if is_wired(c)] + [LARGE_WIRED]


@pytest.fixture(scope="session")
def host_build(tmp_path_factory):
    """(generated sparse libraries, dense fallbacks of the wired ones, {c_name: CModel})."""
    src = tmp_path_factory.mktemp("host_parity")
    sparse = write_libraries(src, [*CONFIGS, LARGE_WIRED])
    dense = write_libraries(src, WIRED, sparse=False, prefix="dense_")
    library = load_library(build_shared_library(sorted(src.glob("*.c")), src / "build", "all_models"))
    bound = {g.c_name: CModel(library, g.c_name, g.model.input_size, g.model.output_size, g.model.state_size)
             for g in sparse + dense}
    return {g.config.id: g for g in sparse}, {g.config.id: g for g in dense}, bound


def _sequences(generated: Generated, seed: int = 1):
    return random_sequences(generated.model.input_size, SEQUENCES, STEPS, seed=seed)


@pytest.mark.parametrize("initial", ["zero", "set_state"])
@pytest.mark.parametrize("config", [*CONFIGS, LARGE_WIRED], ids=lambda c: c.id)
def test_c_matches_reference(config, initial, host_build):
    generated = host_build[0][config.id]
    model, c_model = generated.model, host_build[2][generated.c_name]
    data = _sequences(generated)
    init = None
    if initial == "set_state":
        init = np.random.default_rng(3).uniform(-0.9, 0.9, (SEQUENCES, model.state_size))
    expected, expected_state = reference.run(
        model, data.x, data.dt, None if init is None else reference.State.from_flat(model, init))

    outputs, final_states = c_model.run(data.x, data.dt, init)

    assert outputs.shape == (SEQUENCES, STEPS, model.output_size)
    assert np.max(np.abs(outputs - expected)) <= TOLERANCE
    assert np.max(np.abs(final_states - expected_state.flat())) <= TOLERANCE


@pytest.mark.parametrize("config", WIRED, ids=lambda c: c.id)
def test_dense_fallback_gives_identical_results(config, host_build):
    sparse_gen, dense_gen = host_build[0][config.id], host_build[1][config.id]
    data = _sequences(sparse_gen, seed=4)
    sparse_out, sparse_state = host_build[2][sparse_gen.c_name].run(data.x, data.dt)
    dense_out, dense_state = host_build[2][dense_gen.c_name].run(data.x, data.dt)
    # Same products added in the same order: the skipped ones are exact zeros.
    np.testing.assert_array_equal(sparse_out, dense_out)
    np.testing.assert_array_equal(sparse_state, dense_state)


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[7], WIRED[0]], ids=lambda c: c.id)
def test_null_dts_mean_dt_one(config, host_build):
    generated = host_build[0][config.id]
    c_model = host_build[2][generated.c_name]
    data = random_sequences(generated.model.input_size, 2, 30, seed=5, irregular_dt=False)
    without_dt, _ = c_model.run(data.x, None)
    with_ones, _ = c_model.run(data.x, np.ones(data.x.shape[:2]))
    np.testing.assert_array_equal(without_dt, with_ones)


SWEEP_HARNESS = """
#include "m.c"
void sweep(const float *x, size_t n, float *e, float *t, float *s);
void sweep(const float *x, size_t n, float *e, float *t, float *s)
{
    for (size_t i = 0; i < n; ++i) {
        e[i] = m_exp(x[i]);
        t[i] = m_tanh(x[i]);
        s[i] = m_sigmoid(x[i]);
    }
}
"""


def test_elementary_functions_meet_their_budget(tmp_path):
    """The generated exp (relative), tanh and sigmoid (absolute) against float64 numpy, docs/numerics-float.md."""
    for file_name, text in emit_c_library(model_ir(CONFIGS[0]), "m").files.items():
        (tmp_path / file_name).write_text(text)
    (tmp_path / "harness.c").write_text(SWEEP_HARNESS)
    library = load_library(build_shared_library([tmp_path / "harness.c"], tmp_path / "build", "sweep"))
    x = np.concatenate([np.linspace(-100, 100, 400_001), np.linspace(-1, 1, 200_001), [0.0, np.inf, -np.inf]])
    x = x.astype(np.float32)
    exp, tanh, sig = (np.empty_like(x) for _ in range(3))
    pointer = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))  # noqa: E731
    library.sweep(pointer(x), ctypes.c_size_t(x.size), pointer(exp), pointer(tanh), pointer(sig))
    v = x.astype(np.float64)
    with np.errstate(over="ignore"):
        exact_exp = np.exp(v)
    low, high = np.float32(-87.33), np.float32(88.0)   # the C thresholds, in float32 like the C comparison
    normal = (x >= low) & (x <= high)
    assert np.max(np.abs(exp[normal] / exact_exp[normal] - 1)) <= 2e-7
    assert np.all(exp[x < low] == 0) and np.all(exp[x > high] == np.inf)
    assert np.max(np.abs(tanh - np.tanh(v))) <= 2e-7
    assert np.max(np.abs(sig - reference.sigmoid(v))) <= 2e-7
