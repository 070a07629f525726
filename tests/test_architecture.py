"""The house plan, held against the code: one-way imports between blendlab's rooms, no circles, and
rooms of a readable size that say what they are for and what they may import.

:data:`HOUSE` lists blendlab's rooms from the top floor down, as the README's Layout section draws
them; a room may import only rooms listed after it. Imports are read with ``ast`` from every file,
at module level and inside functions alike. Every room opens with a docstring whose last paragraph
is ``May import: a, b, c.`` (or ``May import: nothing.``); what the room imports must be named
there. A folder (``viz/``, ``widgets/``, ``toyworld/``) is one room; its files name each other
(``viz.base``) and must not import each other in a circle either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: blendlab's rooms, top floor first: each may import only the rooms below it. Above them all stands
#: the package's face, ``blendlab/__init__.py``, which no room imports.
HOUSE = [
    "cli",                 # blendlab edit | demo | download | sweep
    "sweep",               # inputs × settings × seeds -> rows; run_row; backends local and Ray
    "widgets",             # MaskPainter, StepScrubber, EditorApp
    "notebook",            # the notebooks' first cell: device, preset, banner
    "lessons",             # predictions that check themselves (the exercises' widgets)
    "step_check",          # a hand-written blended step checked against the sampler's
    "viz",                 # figures only
    "apps",                # the old name of applications (warns)
    "applications",        # the paper's applications over edit()
    "typography",          # the failure-case lab: zero-shot tables, sweeps, plots
    "speed",               # the speed lab: modes, suite + judged runs, summary, Pareto plot, shipped figures
    "reference",           # the oracle: the authors' loop on guided_diffusion's functions
    "latent",              # Blended Latent Diffusion on diffusers: models, settings, the blended step, the ranked edit
    "runner",              # edit(), EditResult: batches, ranking, saving
    "hooks",               # what a hook is; the built-in hooks' names; the CLI's per-sample videos
    "recorder",            # Recorder: chosen StepState fields, memory-bounded, and its file
    "progress",            # ProgressBar
    "trajectory",          # recorded steps and their file
    "trajectory_compare",  # pairing and distances of two recordings
    "ranking",             # rank an edit's samples by CLIP distances and measures
    "metrics",             # psnr, background drift, seam strength, text-ness
    "sampler",             # StepState, BlendedSampler: Algorithm 1
    "updates",             # the DDPM and DDIM updates, pure functions on guided_diffusion's public arrays
    "nonfinite",           # the error of a step that produced NaN or infinity
    "guidance",            # every loss term, the augmentations
    "inputs",              # the front door: prepare() -> EditInputs, checked once, warnings as data
    "plan",                # the step plan: every step's k, t, index, ᾱ_t, guidance, views, prune, built once
    "config",              # EditConfig: every setting, validated; the one source of defaults
    "textrender",          # text written into images; its CLIP embedding
    "examples",            # ready-made inputs per world
    "capacity",            # will a batch fit in memory: the estimate and the guard
    "toyworld",            # scenes, captions, judge, training scripts, shipped weights
    "video",               # frames of a trajectory as GIF/APNG/WebP/MP4
    "masks",               # load/validate/convert masks
    "images",              # load/validate/convert images
    "models",              # load_models, the Models bundle
    "checkpoints",         # checkpoint files: where from, how loaded
    "presets",             # the presets and their random-weight networks
    "download",            # download, cache, verify
    "embeddings",          # CLIP's view of images and text
    "vocabulary",          # the step vocabulary (step k of N, t, ᾱ_t) and its one label
    "threads",             # torch's thread count per preset (one for the small CPU models)
    "table",               # Table
    "_version",
    "_openmp",
    "_files",              # a fresh file of the umask's mode, for atomic writes
    "errors",
]
#: What the algorithm (and the models under it) must never reach, directly or through other rooms.
ABOVE_THE_ALGORITHM = {"sweep", "widgets", "viz", "typography", "apps", "applications", "cli", "notebook", "runner"}
MAX_LINES = 400
TREES = {"blendlab": ROOT / "blendlab", "benchmarks": ROOT / "benchmarks"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _files() -> dict[str, Path]:
    return {_module_name(p): p for tree in TREES.values() for p in sorted(tree.rglob("*.py"))}


FILES = _files()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The project modules an import statement of ``module`` brings in (a package's face for a name
    that is not a module of it)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in TREES]
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] not in TREES:
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in FILES else base for a in node.names]


def _imports(module: str) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of ``module``, at any depth of the file."""
    path = FILES[module]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += [(target, node.lineno) for target in _resolve(module, path.name == "__init__.py", node)]
    return [(t, line) for t, line in found if t != module]


GRAPH = {m: _imports(m) for m in FILES}


def _room(module: str) -> str | None:
    """blendlab's room of a module (``blendlab.viz.base`` -> ``viz``); None for the package's face."""
    parts = module.split(".")
    return parts[1] if parts[0] == "blendlab" and len(parts) > 1 else None


def _declared(module: str) -> list[str] | None:
    """The names of the ``May import:`` paragraph of a module's docstring, or None without one."""
    doc = ast.get_docstring(ast.parse(FILES[module].read_text())) or ""
    match = re.fullmatch(r"May import: (.*?)\.", " ".join(doc.split("\n\n")[-1].split()))
    if not match:
        return None
    return [] if match.group(1) == "nothing" else [name.strip() for name in match.group(1).split(",")]


def _covers(name: str, module: str, target: str) -> bool:
    """Whether the declared ``name`` (relative to the file's tree, or absolute) covers ``target``."""
    top = module.split(".")[0]
    return any(target == full or target.startswith(full + ".") for full in (f"{top}.{name}", name))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_circle_of_imports():
    graph = {m: {t for t, _ in targets if t in FILES} for m, targets in GRAPH.items()}
    circles = _cycles(graph)
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_every_room_stands_on_a_floor():
    rooms = {_room(m) for m in FILES if m.startswith("blendlab.")}
    new, gone = sorted(rooms - set(HOUSE)), sorted(set(HOUSE) - rooms)
    assert not new, f"new rooms {new}: place them in HOUSE and in the README's Layout"
    assert not gone, f"HOUSE names rooms that no longer exist: {gone}"


def test_the_readme_draws_the_same_house():
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    drawn = [m.group(1) for m in re.finditer(r"^  (\w+)(?:\.py|/) ", layout, re.M)]
    assert drawn == [room for room in HOUSE if not room.startswith("_")], "README's Layout and HOUSE differ"


def test_no_room_imports_one_above_it():
    upward = []
    for module, targets in GRAPH.items():
        if not module.startswith("blendlab."):
            continue
        here = _room(module)
        for target, line in targets:
            there = _room(target)
            if there == here:
                continue
            if there is None or HOUSE.index(there) < HOUSE.index(here):
                upward.append(f"{FILES[module].relative_to(ROOT)}:{line} imports {target}, "
                              f"which stands above {here}")
    assert not upward, "imports that run up the house:\n" + "\n".join(upward)


@pytest.mark.parametrize("room", ["sampler", "guidance", "models"])
def test_the_algorithm_reaches_nothing_above_it(room):
    graph = {m: {t for t, _ in targets} for m, targets in GRAPH.items()}
    seen, todo = set(), [m for m in FILES if _room(m) == room]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph.get(module, ())
    reached = {_room(m) or "the package face" for m in seen}
    above = reached & (ABOVE_THE_ALGORITHM | {"the package face"})
    assert not above, f"{room} reaches {sorted(above)}"


@pytest.mark.parametrize("module", sorted(FILES))
def test_every_room_is_short_and_says_what_it_is_for_and_may_import(module):
    path = FILES[module]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: it is probably two rooms"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split("\n\n")) >= 2, f"{path.relative_to(ROOT)}: open with what it is for"
    declared = _declared(module)
    assert declared is not None, f"{path.relative_to(ROOT)}: end the docstring with 'May import: ...'"
    unknown = [n for n in declared if not any(_covers(n, module, m) for m in FILES)]
    assert not unknown, f"{path.relative_to(ROOT)} may import {unknown}, which do not exist"
    if module.startswith("blendlab.") and _room(module) is not None:
        here = HOUSE.index(_room(module))
        above = [n for n in declared if n.split(".")[0] in HOUSE and HOUSE.index(n.split(".")[0]) < here]
        assert not above, f"{path.relative_to(ROOT)} says it may import {above}, which stand above it"
    undeclared = sorted({f"{t} (line {line})" for t, line in GRAPH[module]
                         if not any(_covers(n, module, t) for n in declared)})
    assert not undeclared, f"{path.relative_to(ROOT)} imports {undeclared}: name them under 'May import'"


def _lesson_imports():
    """(lesson, module, name) for every ``from blendlab… import name`` in the lessons' .py files."""
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "blendlab":
                for alias in node.names:
                    yield path.name, node.module, alias.name


def test_lessons_import_each_name_from_the_room_that_defines_it():
    """A lesson teaches where a name lives: from its defining module, or from a package's face
    (``blendlab``, ``blendlab.widgets``, ``blendlab.latent``…), never through another room's alias."""
    import importlib
    import inspect

    seen, aliased = 0, []
    for lesson, module, name in _lesson_imports():
        mod = importlib.import_module(module)
        obj = getattr(mod, name, None)
        if obj is None or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # a submodule or a constant
        seen += 1
        is_face = hasattr(mod, "__path__")  # a package's __init__
        if obj.__module__ != module and not is_face:
            aliased.append(f"{lesson}: from {module} import {name} (defined in {obj.__module__})")
    assert seen > 20, "the lessons' imports were not found"
    assert not aliased, "lessons import through aliases:\n" + "\n".join(aliased)
