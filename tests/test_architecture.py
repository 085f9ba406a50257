"""The layering ARCHITECTURE.md states, read from the source: a module imports only from its own
layer or below, imports never loop, and every module has a layer and a line in ARCHITECTURE.md."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "src" / "bayesmetal"

# lowest first; a module may import from its own layer and the layers before it
LAYERS = {
    "base": ["errors", "catalog", "priors", "cohort_schema", "run_schema", "arviz_api"]
    + ["report", "plots", "progress", "quiet", "study_schema"],
    "data": [
        "xpt",
        "nhanes",
        "fetch",
        "derive",
        "outcomes",
        "exposures",
        "cohort",
        "validate",
        "tabular",
        "extract",
        "simulate",
        "survey_design",
    ],
    "design": ["design"],
    "declarations": ["families", "models.contract", "bkmr.kernel", "bkmr.priors"]
    + ["bkmr.posterior"],
    "inference": ["sampling", "bkmr.sampler", "bkmr.inclusion", "bkmr.engine", "engines"]
    + ["survey_adjust", "survey_influence", "loo"],
    "results": ["diagnostics", "summaries.posterior", "summaries.glm", "summaries.bwqs"]
    + ["summaries.bkmr", "summaries.describe", "summaries.weighted"],
    "models": ["models.glm", "models.bwqs", "models.bkmr", "models.qgcomp", "models.registry"],
    "loading": ["config", "stages"],
    "output": ["runs", "compare", "terminal", "beside"],
    "orchestration": ["workflow", "benchmark", "bkmr.simulate", "bkmr.bench", "survey_simulation"]
    + ["survey_reference"]
    + [f"calibration.{m}" for m in ("ranks", "bkmr", "pymc_models", "plots")]
    + [f"calibration.{m}" for m in ("prior_recovery", "reference", "runner")]
    + ["study", "study_runner", "study_subgroups", "study_report"],
    "cli": ["cli", "study_cli"],
}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


@functools.cache
def modules() -> list[str]:
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def imports(name: str) -> set[str]:
    """Modules of the package that `name` imports (anywhere in the file, type hints included)."""
    path = PACKAGE.joinpath(*name.split(".")).with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("bayesmetal")
        ):
            base = node.module.removeprefix("bayesmetal").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(candidate if candidate in modules() else base)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("bayesmetal.")
                for a in node.names
                if a.name.startswith("bayesmetal.")
            }
    return {m for m in found if m and m != "__version__" and m in modules()}


def layer_of() -> dict[str, int]:
    return {module: rank for rank, members in enumerate(LAYERS.values()) for module in members}


def test_every_module_has_a_layer_and_a_line_in_architecture_md():
    layers = layer_of()
    assert sorted(layers) == modules(), "add new modules to LAYERS and to ARCHITECTURE.md"
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = [m for m in modules() if f"- `{m}`:" not in text]
    assert not missing, f"ARCHITECTURE.md has no line for {missing}"


def test_imports_go_down_the_layers():
    layers = layer_of()
    upward = {
        (module, target)
        for module in modules()
        for target in imports(module)
        if layers[target] > layers[module]
    }
    assert not upward, f"imports up the layers: {sorted(upward)}"


def test_imports_never_loop():
    graph = {m: imports(m) - {m} for m in modules()}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", f"import loop: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in modules():
        if module not in state:
            visit(module, [module])


def test_importing_the_library_keeps_the_users_matplotlib_backend():
    """plots.py used to switch to Agg at import: a notebook lost its inline plots."""
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import bayesmetal.plots, bayesmetal.workflow, bayesmetal.calibration.plots; "
        "print(matplotlib.get_backend())"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "svg"
