"""Generated C libraries of the tests/models.py configurations, for the tests that build and run them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liquid_edge.emit.c_library import emit_c_library
from liquid_edge.emit.naming import c_identifier
from liquid_edge.ir import Model
from liquid_edge.loaders.ncps_layout import CfCOptions, build_cfc
from models import Config, build


#: A wired model big enough for 16-bit synapse indices and offsets (every config of models.py fits 8 bits).
LARGE_WIRED = Config("autoncp-wide-input", input_size=300,
                     wiring=("AutoNCP", {"units": 60, "output_size": 4, "seed": 2}))


def model_ir(config: Config, seed: int = 0) -> Model:
    """The IR of a configuration, straight from the ncps module's tensors."""
    tensors = {key: value.detach().numpy() for key, value in build(config, seed).state_dict().items()}
    return build_cfc(tensors, CfCOptions(**config.options), config.id)


@dataclass(frozen=True)
class Generated:
    config: Config
    model: Model
    c_name: str
    sparse: bool


def write_libraries(directory: Path, configs: list[Config], *, sparse: bool = True,
                    prefix: str = "") -> list[Generated]:
    """Emit one library per configuration into ``directory`` (C names: sanitized ``prefix`` + id)."""
    directory.mkdir(parents=True, exist_ok=True)
    generated = []
    for config in configs:
        model = model_ir(config)
        c_name = c_identifier(prefix + config.id)
        for file_name, text in emit_c_library(model, c_name, sparse=sparse).files.items():
            (directory / file_name).write_text(text)
        generated.append(Generated(config, model, c_name, sparse))
    names = [g.c_name for g in generated]
    assert len(set(names)) == len(names), f"C names collide: {names}"
    return generated


def is_wired(config: Config) -> bool:
    return config.wiring is not None
