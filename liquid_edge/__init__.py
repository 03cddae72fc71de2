"""liquid-edge: trained liquid neural networks (CfC, LTC, NCP) as verified C for microcontrollers.

The public Python API mirrors the command line::

    import liquid_edge as le
    model = le.load("model.pt")            # -> liquid_edge.ir.Model
    print(le.inspect(model))               # architecture, parameters, MACs, state size
"""

__version__ = "0.1.0"

from liquid_edge.api import inspect, load  # noqa: E402

__all__ = ["__version__", "load", "inspect"]
