"""ncps model factory shared by the tests: every supported configuration, built and seeded deterministically."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Config:
    """One ncps CfC configuration. ``wiring`` is None (dense) or (kind, kwargs)."""

    id: str
    input_size: int = 5
    units: int = 12
    mode: str = "default"
    activation: str = "lecun_tanh"
    backbone_units: int = 16
    backbone_layers: int = 1
    backbone_dropout: float = 0.0
    wiring: tuple | None = None
    mixed_memory: bool = False
    proj_size: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def options(self) -> dict:
        """What a sidecar JSON must say for this model (what shapes cannot tell)."""
        opts = {"mode": self.mode}
        if self.wiring is None:
            opts["activation"] = self.activation
        return opts


def make_wiring(kind: str, kwargs: dict):
    from ncps import wirings

    return getattr(wirings, kind)(**kwargs)


def build(config: Config, seed: int = 0) -> torch.nn.Module:
    """The ncps CfC for a configuration, with seeded random weights (biases too, so nothing is trivially zero)."""
    from ncps.torch import CfC

    torch.manual_seed(seed)
    np.random.seed(seed)  # ncps Random/NCP wirings draw from numpy
    if config.wiring is not None:
        kind, kwargs = config.wiring
        units = make_wiring(kind, dict(kwargs))
        model = CfC(config.input_size, units, proj_size=config.proj_size, mixed_memory=config.mixed_memory,
                    mode=config.mode)
    else:
        model = CfC(config.input_size, config.units, proj_size=config.proj_size, mixed_memory=config.mixed_memory,
                    mode=config.mode, activation=config.activation, backbone_units=config.backbone_units,
                    backbone_layers=config.backbone_layers, backbone_dropout=config.backbone_dropout)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1 or name.endswith("w_tau") or name.endswith(".A"):
                param.uniform_(-0.5, 0.5)
            if name.endswith(".A"):
                param.add_(1.0)
    return model.eval()


def _cfg(id: str, **kw) -> Config:
    return Config(id=id, **kw)


CONFIGS = [
    _cfg("default-lecun"),
    _cfg("default-silu", activation="silu"),
    _cfg("default-relu", activation="relu"),
    _cfg("default-tanh", activation="tanh"),
    _cfg("default-gelu", activation="gelu"),
    _cfg("no_gate-lecun", mode="no_gate"),
    _cfg("no_gate-silu-2layers", mode="no_gate", activation="silu", backbone_layers=2),
    _cfg("pure-lecun", mode="pure"),
    _cfg("pure-nobackbone", mode="pure", backbone_layers=0),
    _cfg("default-nobackbone", backbone_layers=0),
    _cfg("default-3layers-dropout", backbone_layers=3, backbone_dropout=0.2, activation="gelu"),
    _cfg("default-mixed", mixed_memory=True),
    _cfg("default-proj", proj_size=3),
    _cfg("no_gate-mixed-proj", mode="no_gate", mixed_memory=True, proj_size=2, activation="relu"),
    _cfg("pure-mixed-proj", mode="pure", mixed_memory=True, proj_size=4),
    _cfg("autoncp-default", wiring=("AutoNCP", {"units": 16, "output_size": 3, "seed": 7})),
    _cfg("autoncp-no_gate", mode="no_gate", wiring=("AutoNCP", {"units": 14, "output_size": 2, "seed": 3})),
    _cfg("autoncp-pure", mode="pure", wiring=("AutoNCP", {"units": 14, "output_size": 2, "seed": 3})),
    _cfg("ncp-default", wiring=("NCP", {"inter_neurons": 6, "command_neurons": 5, "motor_neurons": 2,
                                        "sensory_fanout": 3, "inter_fanout": 3, "recurrent_command_synapses": 4,
                                        "motor_fanin": 3, "seed": 11})),
    _cfg("fullyconnected-default", wiring=("FullyConnected", {"units": 8, "output_dim": 3})),
    _cfg("random-no_gate", mode="no_gate", wiring=("Random", {"units": 10, "output_dim": 2,
                                                             "sparsity_level": 0.5, "random_seed": 5})),
    _cfg("autoncp-mixed-proj", wiring=("AutoNCP", {"units": 16, "output_size": 3, "seed": 1}),
         mixed_memory=True, proj_size=2),
]

#: A small dense and a small wired model, for tests that need just one of each (compilation, QEMU).
DENSE = CONFIGS[0]
WIRED = CONFIGS[15]


def by_id(config_id: str) -> Config:
    return next(c for c in CONFIGS if c.id == config_id)
