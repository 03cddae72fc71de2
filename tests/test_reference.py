"""The float64 reference against ncps itself, on every configuration, through the real loader path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import liquid_edge
from liquid_edge import reference
from models import CONFIGS, Config

STEPS = 200
TOLERANCE = 1e-5


def ncps_run(module: torch.nn.Module, x: np.ndarray, dt: np.ndarray, state: reference.State,
             mixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Run one sequence (T, I) through ncps in float64; returns (outputs (T, O), final flat state (S,))."""
    module = module.double()
    h = torch.tensor(state.h)
    hx = (h, torch.tensor(state.c)) if mixed else h
    with torch.no_grad():
        out, hx = module(torch.tensor(x)[None], hx, timespans=torch.tensor(dt)[None, :, None])
    final = torch.cat(hx, dim=1) if mixed else hx
    return out[0].numpy(), final[0].numpy()


def random_state(model, rng: np.random.Generator, batch: int = 1) -> reference.State:
    return reference.State.from_flat(model, rng.uniform(-0.8, 0.8, (batch, model.state_size)))


@pytest.mark.parametrize("initial", ["zero", "random"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_reference_matches_ncps(config: Config, initial: str, write_checkpoint):
    checkpoint = write_checkpoint(config)
    model = liquid_edge.load(checkpoint.path)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((STEPS, config.input_size))
    dt = rng.uniform(0.05, 2.0, STEPS)
    state = reference.initial_state(model) if initial == "zero" else random_state(model, rng)

    expected, expected_state = ncps_run(checkpoint.module, x, dt, state, config.mixed_memory)
    outputs, final = reference.run(model, x[None], dt[None], state)

    assert outputs.shape == (1, STEPS, model.output_size)
    assert np.max(np.abs(outputs[0] - expected)) <= TOLERANCE
    assert np.max(np.abs(final.flat()[0] - expected_state)) <= TOLERANCE


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_batched_reference_uses_per_sample_dt(config: Config, write_checkpoint):
    """A batch with a different dt sequence per sample equals ncps run on each sample alone."""
    checkpoint = write_checkpoint(config)
    model = liquid_edge.load(checkpoint.path)
    rng = np.random.default_rng(2)
    batch, steps = 3, 40
    x = rng.standard_normal((batch, steps, config.input_size))
    dt = rng.uniform(0.05, 2.0, (batch, steps))
    state = random_state(model, rng, batch)

    outputs, final = reference.run(model, x, dt, state)

    for b in range(batch):
        one = reference.State.from_flat(model, state.flat()[b:b + 1])
        expected, expected_state = ncps_run(checkpoint.module, x[b], dt[b], one, config.mixed_memory)
        assert np.max(np.abs(outputs[b] - expected)) <= TOLERANCE
        assert np.max(np.abs(final.flat()[b] - expected_state)) <= TOLERANCE


def test_dt_none_means_one(write_checkpoint):
    checkpoint = write_checkpoint(CONFIGS[0])
    model = liquid_edge.load(checkpoint.path)
    x = np.random.default_rng(3).standard_normal((20, model.input_size))
    without, _ = reference.run(model, x)
    with_ones, _ = reference.run(model, x, np.ones(20))
    np.testing.assert_array_equal(without, with_ones)
