"""Generated integer C against the bit-exact emulator on the host: every scheme and configuration kind, over
1000 steps with saturating inputs and irregular dt (0, tiny, huge), through the integer and the float API."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from generated_c import model_ir
from liquid_edge.data import random_sequences
from liquid_edge.emit.c_quantized import SPARSE_MAX_DENSITY, emit_quantized_library, plan_quantized
from liquid_edge.quant import Emulator, quantize, tables
from liquid_edge.quant.qmodel import DT_MAX_Q
from liquid_edge.runners.host import build_shared_library, load_library
from models import by_id

STRICT = ("-Wall", "-Wextra", "-Werror", "-pedantic")
STEPS = 1000

CASES = [
    ("default-lecun", "int8", 16), ("default-lecun", "a16w8", 16), ("default-lecun", "pow2", 16),
    ("default-lecun", "int8", 8), ("autoncp-default", "int8", 16), ("autoncp-pure", "a16w8", 16),
    ("default-mixed", "a16w8", 16), ("default-mixed", "pow2", 8), ("default-proj", "int8", 16),
    ("no_gate-silu-2layers", "pow2", 16), ("pure-lecun", "int8", 16), ("default-relu", "a16w8", 16),
    ("default-gelu", "int8", 16), ("no_gate-mixed-proj", "int8", 16), ("random-no_gate", "pow2", 16),
]


def stress_data(input_size: int, seed: int = 3):
    """Unit-normal inputs with 100x spikes, and dt from 0 to far beyond its saturation point."""
    data = random_sequences(input_size, 2, STEPS, seed=seed)
    rng = np.random.default_rng(seed)
    x = data.x * np.where(rng.random(data.x.shape[:2] + (1,)) < 0.03, 100.0, 1.0)
    dt = data.dt.copy()
    dt[:, ::97] = 0.0
    dt[:, 5::113] = 1e-6
    dt[:, 7::131] = 1e6
    return x, dt


class QLibrary:
    """ctypes binding of the integer entry points of one generated quantized library."""

    def __init__(self, path, c_name, qmodel):
        self.lib, self.name, self.q = load_library(path), c_name, qmodel
        self.in_type = np.int8 if qmodel.act_bits == 8 else np.int16

    def _state(self):
        state = (ctypes.c_int16 * self.q.state_size)()
        getattr(self.lib, f"{self.name}_reset")(ctypes.byref(state))
        return state

    def run_q(self, x_q: np.ndarray, dt_q: np.ndarray | None) -> np.ndarray:
        outputs = np.zeros((x_q.shape[0], x_q.shape[1], self.q.output_size), dtype=np.int16)
        for b in range(x_q.shape[0]):
            xs = np.ascontiguousarray(x_q[b], dtype=self.in_type)
            dts = None if dt_q is None else np.ascontiguousarray(dt_q[b], dtype=np.int32).ctypes.data_as(
                ctypes.c_void_p)
            getattr(self.lib, f"{self.name}_run_q")(ctypes.byref(self._state()), xs.ctypes.data_as(ctypes.c_void_p),
                                                    dts, ctypes.c_size_t(x_q.shape[1]),
                                                    outputs[b].ctypes.data_as(ctypes.c_void_p))
        return outputs.astype(np.int64)

    def run(self, x: np.ndarray, dt: np.ndarray) -> np.ndarray:
        outputs = np.zeros((x.shape[0], x.shape[1], self.q.output_size), dtype=np.float32)
        for b in range(x.shape[0]):
            xs, dts = np.ascontiguousarray(x[b], dtype=np.float32), np.ascontiguousarray(dt[b], dtype=np.float32)
            getattr(self.lib, f"{self.name}_run")(ctypes.byref(self._state()), xs.ctypes.data_as(ctypes.c_void_p),
                                                  dts.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(x.shape[1]),
                                                  outputs[b].ctypes.data_as(ctypes.c_void_p))
        return outputs


def build_library(tmp_path, qmodel, c_name: str, extra=("-fsanitize=undefined", "-fno-sanitize-recover=all"),
                  dsp: bool = False, sparse_max_density: float = SPARSE_MAX_DENSITY):
    library = emit_quantized_library(qmodel, c_name, dsp=dsp, sparse_max_density=sparse_max_density)
    for file_name, text in library.files.items():
        (tmp_path / file_name).write_text(text)
    path = build_shared_library([tmp_path / f"{c_name}.c"], tmp_path / "build", c_name, (*STRICT, "-g", *extra))
    return QLibrary(path, c_name, qmodel)


# The weight layout of the DSP kernels, run through its portable branch (the host has no SMLAD).
DSP_CASES = [("default-lecun", "int8", 16), ("default-mixed", "a16w8", 8), ("no_gate-silu-2layers", "pow2", 16),
             ("autoncp-mixed-proj", "int8", 16)]
# NCP masks of these sizes keep most weights, so they run dense by default; the sparse kernel, forced.
SPARSE_CASES = [("autoncp-default", "int8", 16), ("autoncp-pure", "a16w8", 16), ("ncp-default", "pow2", 16)]
ALL_CASES = ([(*case, "portable") for case in CASES] + [(*case, "dsp") for case in DSP_CASES]
             + [(*case, "sparse") for case in SPARSE_CASES])


@pytest.mark.parametrize("config_id,scheme,state_bits,layout", ALL_CASES,
                         ids=[f"{c}-{s}-s{b}{'' if k == 'portable' else '-' + k}" for c, s, b, k in ALL_CASES])
def test_integer_c_is_bit_exact_with_the_emulator(tmp_path, config_id, scheme, state_bits, layout):
    model = model_ir(by_id(config_id))
    qmodel = quantize(model, random_sequences(model.input_size, 4, 150, seed=1), scheme, state_bits=state_bits)
    library = build_library(tmp_path, qmodel, "qm", dsp=layout == "dsp",
                            sparse_max_density=1.01 if layout == "sparse" else SPARSE_MAX_DENSITY)
    if layout == "sparse":
        assert "_matvec_sparse(" in (tmp_path / "qm.c").read_text()
    emulator = Emulator(qmodel)
    x, dt = stress_data(model.input_size)
    x_q = emulator.quantize_inputs(x)
    dt_q = emulator.quantize_dt(dt)
    assert dt_q.max() == DT_MAX_Q and dt_q.min() == 0            # saturation of dt is exercised
    assert (x_q.min(), x_q.max()) == (emulator.act_lo, emulator.act_hi)   # and of the inputs
    expected, _ = emulator.run_q(x_q, dt_q)
    np.testing.assert_array_equal(library.run_q(x_q, dt_q), expected)
    np.testing.assert_array_equal(library.run(x, dt), emulator.run(x, dt))


def test_layouts_of_masked_and_dsp_layers():
    """Dense-enough masks run through the dense kernels (every layer of a small NCP); the DSP layout scales rows
    so that every requantization shift reaches 33, and keeps int8 rows for a layer where it cannot."""
    model = model_ir(by_id("autoncp-default"))
    qmodel = quantize(model, random_sequences(model.input_size, 4, 150, seed=1), "int8")
    plan = plan_quantized(qmodel, "qp", dsp=True)
    assert all(layer.packed and not layer.sparse for layer in plan.layers())
    assert plan.macs_per_step == sum(layer.rows * layer.cols for layer in plan.layers())
    assert sum(layer.kept for layer in plan.layers()) < plan.macs_per_step
    heads = plan.cells[0].heads
    assert heads.headroom.max() > 0 and np.all(heads.layer.shift + heads.headroom >= 33)
    sparse = plan_quantized(qmodel, "qp", sparse_max_density=1.01)
    assert sparse.needs_sparse and sparse.index_ctype == "uint8_t"     # 16 units: byte indices
    names = [array.name for array in plan.arrays]
    assert plan.sigmoid_from_tanh and f"qp_t_{tables.TANH}" in names and f"qp_t_{tables.SIGMOID}" not in names
    qmodel.tables[tables.SIGMOID] = tables.build("sigmoid", tables.SIGMOID_IN, tables.UNIT_OUT)  # an older model
    assert f"qp_t_{tables.SIGMOID}" in [array.name for array in plan_quantized(qmodel, "qp").arrays]
    heads.layer.shift[0] = 20      # a ratio near 2^13: no int16 scaling reaches n = 33
    assert not plan_quantized(qmodel, "qp", dsp=True).cells[0].heads.packed


def test_dt_null_means_one_and_nan_inputs_quantize_to_zero(tmp_path):
    model = model_ir(by_id("default-proj"))
    qmodel = quantize(model, random_sequences(model.input_size, 2, 50, seed=1), "int8")
    library = build_library(tmp_path, qmodel, "qn")
    emulator = Emulator(qmodel)
    x = random_sequences(model.input_size, 1, 40, seed=5).x
    x[0, 3, 1] = np.nan
    assert emulator.quantize_inputs(x)[0, 3, 1] == 0
    np.testing.assert_array_equal(library.run_q(emulator.quantize_inputs(x), None),
                                  emulator.run_q(emulator.quantize_inputs(x))[0])
    np.testing.assert_array_equal(library.run(x, np.ones(x.shape[:2])), emulator.run(x))


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_integer_c_compiles_warning_free(tmp_path, compiler):
    """Both weight layouts (portable and DSP, the latter through its portable branch off Arm)."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} missing")
    for config_id, scheme in (("autoncp-mixed-proj", "int8"), ("pure-mixed-proj", "pow2"),
                              ("default-3layers-dropout", "a16w8")):
        model = model_ir(by_id(config_id))
        qmodel = quantize(model, random_sequences(model.input_size, 2, 50, seed=1), scheme)
        for dsp in (False, True):
            c_name = config_id.replace("-", "_") + ("_dsp" if dsp else "")
            for file_name, text in emit_quantized_library(qmodel, c_name, dsp=dsp).files.items():
                (tmp_path / file_name).write_text(text)
            result = subprocess.run([compiler, "-std=c99", *STRICT, "-O2", "-c", str(tmp_path / f"{c_name}.c"),
                                     "-o", str(tmp_path / f"{c_name}.o")], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr


DRIVER = r"""
#include <math.h>
#include <stdio.h>
#include "qs.h"

int main(void)
{
    static const float extremes[] = {0.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 1e-30f, -3.5f};
    static const float dts[] = {1.0f, 0.0f, -1.0f, 1e9f, NAN, INFINITY, 1e-9f, 0.5f};
    qs_state_t state;
    float input[QS_INPUT_SIZE], output[QS_OUTPUT_SIZE], values[QS_STATE_SIZE];
    unsigned i, k;
    qs_reset(&state);
    for (i = 0; i < 512u; ++i) {
        for (k = 0; k < QS_INPUT_SIZE; ++k) {
            input[k] = extremes[(i + k) % 8u];
        }
        qs_step(&state, input, dts[i % 8u], output);
        if (i % 64u == 0u) {
            qs_get_state(&state, values);
            for (k = 0; k < QS_STATE_SIZE; ++k) {
                values[k] = extremes[(i / 64u + k) % 8u];
            }
            qs_set_state(&state, values);
        }
    }
    printf("%d\n", (int)output[0]);
    return 0;
}
"""


@pytest.mark.parametrize("config_id,scheme,dsp", [("autoncp-mixed-proj", "int8", True),
                                                  ("pure-mixed-proj", "pow2", False)])
def test_extreme_inputs_are_sanitizer_clean(tmp_path, config_id, scheme, dsp):
    """NaN, infinities and huge values through the float API, dt and set_state: no UB, no bad access."""
    model = model_ir(by_id(config_id))
    qmodel = quantize(model, random_sequences(model.input_size, 2, 50, seed=1), scheme)
    for file_name, text in emit_quantized_library(qmodel, "qs", dsp=dsp).files.items():
        (tmp_path / file_name).write_text(text)
    (tmp_path / "main.c").write_text(DRIVER)
    program = tmp_path / "driver"
    build = subprocess.run(["gcc", "-std=c99", *STRICT, "-g", "-fsanitize=address,undefined",
                            "-fno-sanitize-recover=all", str(tmp_path / "qs.c"), str(tmp_path / "main.c"),
                            "-o", str(program), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr
