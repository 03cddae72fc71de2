"""liquid-edge: trained liquid neural networks (CfC, LTC, NCP) as verified C for microcontrollers.

The public Python API mirrors the command line::

    import liquid_edge as le
    model = le.load("model.pt")            # -> liquid_edge.ir.Model
    print(le.inspect(model))               # architecture, parameters, MACs, state size
    le.compile(model, "out", target="cortex-m4", quantize="int8", calibration="data.npz")
    le.verify("out", on="all")             # -> the report of `liquid-edge verify --json`
    le.bench("out"); le.report("out", "report.html"); le.targets(); le.demo()
"""

__version__ = "0.1.0"

from liquid_edge.api import bench, compile, demo, inspect, load, report, targets, verify  # noqa: E402

__all__ = ["__version__", "load", "inspect", "compile", "verify", "bench", "report", "targets", "demo"]
