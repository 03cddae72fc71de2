"""Integer quantization: schemes, calibration, integer nonlinearity tables, the quantized model and its
bit-exact emulator (the golden model of the generated integer C). The arithmetic is specified in
docs/numerics.md."""

from liquid_edge.quant.emulator import Emulator
from liquid_edge.quant.qmodel import SCHEMES, QModel, load, save
from liquid_edge.quant.quantize import QuantizationError, quantize

__all__ = ["Emulator", "QModel", "QuantizationError", "SCHEMES", "load", "quantize", "save"]
