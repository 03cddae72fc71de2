"""The reference evaluated in float32: the noise floor behind verify's default tolerance of float builds."""

from __future__ import annotations

import numpy as np
import pytest

from generated_c import model_ir
from liquid_edge import reference
from liquid_edge.data import random_sequences
from models import by_id


@pytest.mark.parametrize("config_id", ["default-gelu", "pure-mixed-proj", "autoncp-no_gate"])
def test_float32_run_is_float32_arithmetic_close_to_float64(config_id):
    model = model_ir(by_id(config_id))
    data = random_sequences(model.input_size, 2, 50)
    outputs64, state64 = reference.run(model, data.x, data.dt)
    outputs32, state32 = reference.run(model, data.x, data.dt, dtype=np.float32)
    assert state64.h.dtype == np.float64 and state32.h.dtype == np.float32
    assert outputs32.dtype == np.float64   # float32 values, returned in the reference's array type
    np.testing.assert_array_equal(outputs32, outputs32.astype(np.float32))
    error = np.max(np.abs(outputs32 - outputs64))
    assert 0 < error < 1e-5


def test_float32_step_matches_float32_run():
    model = model_ir(by_id("default-mixed"))
    data = random_sequences(model.input_size, 1, 3)
    outputs, _ = reference.run(model, data.x, data.dt, dtype=np.float32)
    state = reference.initial_state(model, 1, np.float32)
    for t in range(3):
        step_out, state = reference.step(model, data.x[:, t], state, data.dt[:, t], dtype=np.float32)
        np.testing.assert_array_equal(step_out, outputs[:, t])
