"""The generated C as a C programmer sees it: strict warnings under gcc and clang, no heap and no writable
globals, several models and instances in one program, and a sanitizer run with extreme inputs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generated_c import LARGE_WIRED, is_wired, model_ir, write_libraries
from liquid_edge import reference
from liquid_edge.emit.c_library import emit_c_library
from liquid_edge.emit.naming import c_identifier
from models import CONFIGS, DENSE, WIRED, Config

STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wshadow",
                "-Wdouble-promotion", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wcast-qual", "-Wundef",
                "-Wvla", "-Wfloat-equal", "-Wredundant-decls"]
COMPILERS = ["gcc", "clang"]
#: [x, h] of 16 values: every input block of the float kernels full, no remainder (gcc once warned on that shape).
ALIGNED = Config("aligned-4-inputs", input_size=4)
TOLERANCE = 1e-5


@pytest.fixture(scope="session")
def all_sources(tmp_path_factory) -> Path:
    """Every configuration (NCP ones sparse and dense) in one folder."""
    src = tmp_path_factory.mktemp("hygiene")
    write_libraries(src, [*CONFIGS, LARGE_WIRED, ALIGNED])
    write_libraries(src, [c for c in CONFIGS if is_wired(c)], sparse=False, prefix="dense_")
    return src


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command[:3])} ... failed:\n{result.stdout}\n{result.stderr}"
    return result


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.mark.parametrize("level", ["-O2", "-O3", "-Os"])
@pytest.mark.parametrize("compiler", COMPILERS)
def test_strict_warnings_are_clean(compiler, level, all_sources, tmp_path):
    _require(compiler)
    sources = sorted(str(p) for p in all_sources.glob("*.c"))
    _run([compiler, *STRICT_FLAGS, level, "-c", *sources], cwd=tmp_path)
    assert len(list(tmp_path.glob("*.o"))) == len(sources)


def test_no_heap_and_no_writable_globals(all_sources, tmp_path):
    _require("nm")
    sources = sorted(str(p) for p in all_sources.glob("*.c"))
    _run(["gcc", "-std=c99", "-O2", "-c", *sources], cwd=tmp_path)
    symbols = _run(["nm", *sorted(str(p) for p in tmp_path.glob("*.o"))], cwd=tmp_path).stdout
    undefined = {line.split()[-1] for line in symbols.splitlines() if line.split()[:1] == ["U"]}
    assert not undefined & {"malloc", "calloc", "realloc", "free"}
    # Weights are read-only ('r'/'R'); data, bss or common symbols would make the code non-reentrant.
    writable = [line for line in symbols.splitlines() if len(line.split()) == 3 and line.split()[1] in "bBdDgGsSC"]
    assert writable == []


def _c_floats(values: np.ndarray) -> str:
    return ", ".join(f"{np.float32(v)}f" for v in np.ravel(values))


TWO_MODELS_MAIN = """
#include <stdio.h>
#include <string.h>
#include "{a}.h"
#include "{b}.h"

#define STEPS {steps}
static const float xa[STEPS * {A}_INPUT_SIZE] = {{{xa}}};
static const float xb[STEPS * {B}_INPUT_SIZE] = {{{xb}}};
static const float dts[STEPS] = {{{dts}}};

int main(void)
{{
    {a}_state_t first, second;
    {b}_state_t other;
    static float ya[STEPS * {A}_OUTPUT_SIZE], ya_interleaved[STEPS * {A}_OUTPUT_SIZE];
    static float yb[STEPS * {B}_OUTPUT_SIZE];
    {a}_reset(&first);
    {a}_reset(&second);
    {b}_reset(&other);
    {a}_run(&first, xa, dts, STEPS, ya);
    for (size_t t = 0; t < STEPS; ++t) {{
        {a}_step(&second, xa + t * {A}_INPUT_SIZE, dts[t], ya_interleaved + t * {A}_OUTPUT_SIZE);
        {b}_step(&other, xb + t * {B}_INPUT_SIZE, dts[t], yb + t * {B}_OUTPUT_SIZE);
    }}
    if (memcmp(ya, ya_interleaved, sizeof ya) != 0) {{
        return 3;
    }}
    for (size_t i = 0; i < STEPS * {A}_OUTPUT_SIZE; ++i) printf("a %.9g\\n", (double)ya[i]);
    for (size_t i = 0; i < STEPS * {B}_OUTPUT_SIZE; ++i) printf("b %.9g\\n", (double)yb[i]);
    return 0;
}}
"""


def test_two_models_and_two_instances_in_one_program(tmp_path):
    """A dense and a wired model under different (awkward) names, linked together; a second instance of the first
    model interleaved with the other model gives the same outputs as the first instance alone."""
    steps = 40
    names = {"a": c_identifier("Wind sensor #1"), "b": c_identifier("int")}
    models = {"a": model_ir(DENSE), "b": model_ir(WIRED)}
    for key, model in models.items():
        for file_name, text in emit_c_library(model, names[key]).files.items():
            (tmp_path / file_name).write_text(text)
    rng = np.random.default_rng(7)
    x = {key: rng.standard_normal((steps, model.input_size)) for key, model in models.items()}
    dt = rng.uniform(0.05, 2.0, steps)
    main = TWO_MODELS_MAIN.format(a=names["a"], b=names["b"], A=names["a"].upper(), B=names["b"].upper(),
                                  steps=steps, xa=_c_floats(x["a"]), xb=_c_floats(x["b"]), dts=_c_floats(dt))
    (tmp_path / "main.c").write_text(main)
    sources = ["main.c", f"{names['a']}.c", f"{names['b']}.c"]
    _run(["gcc", *STRICT_FLAGS, "-O2", "-Wno-missing-prototypes", *sources, "-o", "two_models", "-lm"], cwd=tmp_path)
    printed = _run([str(tmp_path / "two_models")], cwd=tmp_path).stdout.split("\n")
    for key, model in models.items():
        got = np.array([float(line.split()[1]) for line in printed if line.startswith(key + " ")])
        x32 = x[key].astype(np.float32).astype(np.float64)
        expected, _ = reference.run(model, x32, dt.astype(np.float32).astype(np.float64))
        assert np.max(np.abs(got.reshape(expected.shape) - expected)) <= TOLERANCE


# "" would give "model" like "模型": one of them is enough to link (test_codegen checks both).
AWKWARD_NAMES = ["int", "while", "3d-net", 'my "quoted" model\'s', "réseau", "模型", "__Init", "string", "error",
                 "uint8", "a" * 40]


def test_awkward_names_compile_and_link_together(tmp_path):
    c_names = [c_identifier(name) for name in AWKWARD_NAMES]
    assert len(set(c_names)) == len(c_names)
    model = model_ir(DENSE)
    for c_name in c_names:
        for file_name, text in emit_c_library(model, c_name).files.items():
            (tmp_path / file_name).write_text(text)
    includes = "".join(f'#include "{n}.h"\n' for n in c_names)
    calls = "".join(f"    {{ {n}_state_t s; {n}_reset(&s); }}\n" for n in c_names)
    (tmp_path / "main.c").write_text(f"{includes}\nint main(void)\n{{\n{calls}    return 0;\n}}\n")
    sources = ["main.c", *(f"{n}.c" for n in c_names)]
    _run(["gcc", *STRICT_FLAGS, "-O2", *sources, "-o", "names", "-lm"], cwd=tmp_path)
    _run([str(tmp_path / "names")], cwd=tmp_path)


EXTREME_MAIN_HEAD = """
#include <math.h>
#include <stdio.h>
#include <stddef.h>
{includes}
static const float extremes[] = {{1e30f, -1e30f, 1e-30f, -1e-30f, 0.0f, 3.0f, -7.5f}};
static const float dts[] = {{0.0f, 1e-30f, 1e30f, 1.0f, 0.5f, 1e30f, 0.0f}};
#define EXTREMES (sizeof extremes / sizeof extremes[0])

static int count_nonfinite(const float *v, size_t n)
{{
    int bad = 0;
    for (size_t i = 0; i < n; ++i) bad += !isfinite(v[i]);
    return bad;
}}

/* Steps with extreme inputs and dt, then a run from an extreme state; prints the number of non-finite outputs. */
#define EXERCISE(name, NAME) do {{ \\
    name##_state_t state; \\
    float x[4 * NAME##_INPUT_SIZE], y[4 * NAME##_OUTPUT_SIZE], s[NAME##_STATE_SIZE]; \\
    int bad = 0; \\
    name##_reset(&state); \\
    for (size_t t = 0; t < 5 * EXTREMES; ++t) {{ \\
        for (size_t i = 0; i < NAME##_INPUT_SIZE; ++i) x[i] = extremes[(t + i) % EXTREMES]; \\
        name##_step(&state, x, dts[(t / EXTREMES) % EXTREMES], y); \\
        bad += count_nonfinite(y, NAME##_OUTPUT_SIZE); \\
    }} \\
    for (size_t i = 0; i < NAME##_STATE_SIZE; ++i) s[i] = i % 2 ? 1e30f : -1e30f; \\
    name##_set_state(&state, s); \\
    for (size_t i = 0; i < 4 * NAME##_INPUT_SIZE; ++i) x[i] = extremes[i % EXTREMES]; \\
    name##_run(&state, x, NULL, 4, y); \\
    name##_get_state(&state, s); \\
    bad += count_nonfinite(y, 4 * NAME##_OUTPUT_SIZE); \\
    printf(#name " %d\\n", bad); \\
}} while (0)

int main(void)
{{
{calls}    return 0;
}}
"""


def test_sanitizers_with_extreme_inputs(tmp_path):
    """No undefined behaviour or out-of-bounds access, and finite outputs, for huge, tiny and zero inputs,
    dt = 0 and dt huge, and a state of +-1e30 set through set_state."""
    generated = write_libraries(tmp_path, CONFIGS)
    includes = "".join(f'#include "{g.c_name}.h"\n' for g in generated)
    calls = "".join(f"    EXERCISE({g.c_name}, {g.c_name.upper()});\n" for g in generated)
    (tmp_path / "main.c").write_text(EXTREME_MAIN_HEAD.format(includes=includes, calls=calls))
    sources = ["main.c", *(f"{g.c_name}.c" for g in generated)]
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
    _run(["gcc", "-std=c99", "-O1", *sanitize, *sources, "-o", "extreme", "-lm"], cwd=tmp_path)
    result = _run([str(tmp_path / "extreme")], cwd=tmp_path)
    assert "runtime error" not in result.stderr
    nonfinite = dict(line.split() for line in result.stdout.splitlines())
    assert nonfinite == {g.c_name: "0" for g in generated}


def test_documented_example_builds_and_runs(tmp_path):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "c-api.md").read_text()
    example = re.search(r"## Example\s+```c\n(.*?)```", doc, re.S).group(1)
    for file_name, text in emit_c_library(model_ir(DENSE), "walker").files.items():
        (tmp_path / file_name).write_text(text)
    (tmp_path / "main.c").write_text(example)
    _run(["gcc", *STRICT_FLAGS, "-O2", "main.c", "walker.c", "-o", "example", "-lm"], cwd=tmp_path)
    assert _run([str(tmp_path / "example")], cwd=tmp_path).stdout.startswith("output[0] = ")


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_header_is_usable_from_cpp(compiler, all_sources, tmp_path):
    _require(compiler)
    headers = sorted(p.name for p in all_sources.glob("*.h"))
    (tmp_path / "use.cpp").write_text("".join(f'#include "{h}"\n' for h in headers) + "int main() { return 0; }\n")
    _run([compiler, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{all_sources}", "-fsyntax-only",
          "use.cpp"], cwd=tmp_path)


@pytest.mark.cross
@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m0", "-mfloat-abi=soft"],
                                 ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]], ids=["m0", "m4f"])
def test_strict_warnings_are_clean_for_cortex_m(cpu, all_sources, tmp_path):
    """Also with the Arm FMA path (fmaf) and soft float, where the build differs from the host's."""
    _require("arm-none-eabi-gcc")
    sources = sorted(str(p) for p in all_sources.glob("*.c"))
    _run(["arm-none-eabi-gcc", "-mthumb", *cpu, *STRICT_FLAGS, "-O2", "-c", *sources], cwd=tmp_path)


def test_weight_bytes_macro_is_the_size_of_the_const_data(all_sources, tmp_path):
    """NAME_WEIGHT_BYTES (also the manifest's weight_bytes) counts exactly the arrays the code defines (at -O0:
    optimizing builds may fold a tiny array into the instructions, so they can only be smaller)."""
    _require("size")
    for header in sorted(all_sources.glob("*.h")):
        c_name = header.stem
        declared = int(re.search(rf"#define {c_name.upper()}_WEIGHT_BYTES (\d+)", header.read_text()).group(1))
        _run(["gcc", "-std=c99", "-O0", "-fdata-sections", "-c", str(all_sources / f"{c_name}.c"), "-o", "m.o"],
             cwd=tmp_path)
        sections = _run(["size", "-A", "m.o"], cwd=tmp_path).stdout.splitlines()
        emitted = sum(int(line.split()[1]) for line in sections if line.startswith(f".rodata.{c_name}_"))
        assert emitted == declared, c_name


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_text_from_the_checkpoint_cannot_become_code(tmp_path, capsys, quantize):
    """A model name, module key or path that tries to close the header comment stays inside it: the library
    compiles, verify passes, and the constructor the name smuggles in never exists, let alone runs."""
    import torch

    from cortex_m import run_cli_json
    from models import build

    sentinel = tmp_path / "PWNED"
    payload = (f'demo */\n#include <stdlib.h>\n__attribute__((constructor)) static void pwn(void)'
               f'{{system("touch {sentinel}");}}\n/* ')
    folder = tmp_path / "dir*" / "x\n/*y"
    folder.mkdir(parents=True)
    checkpoint = folder / "trojan.pt"
    torch.save({"state_dict": build(DENSE).state_dict(),
                "liquid_edge_config": {"mode": "default", "activation": "lecun_tanh", "name": payload}}, checkpoint)
    out = tmp_path / "out"
    argv = ["compile", str(checkpoint), "-o", str(out)]
    if quantize:
        argv += ["--quantize", quantize, "--calibration", "random"]
    assert run_cli_json(capsys, *argv)[0] == 0
    header = next((out / "src").glob("*.h")).read_text()
    assert "constructor" in header and "pwn" in header  # the text is kept, readable, inside the comment
    for source in (out / "src").iterdir():
        code = re.sub(r"/\*.*?\*/", "", source.read_text(), flags=re.S)
        assert "constructor" not in code and "system(" not in code, source.name
    code, report = run_cli_json(capsys, "verify", str(out), "--steps", "20", "--sequences", "1")
    assert code == 0 and report["passed"]
    assert not sentinel.exists()
