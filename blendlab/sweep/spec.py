"""The sweep spec and its rows: inputs × a grid of :class:`EditConfig` fields × seeds.

A spec is a dict (or a YAML/TOML file holding one)::

    preset: toy                       # the model preset every row runs with
    config: {timestep_respacing: "25", skip_timesteps: 10, iterations_num: 1}   # fixed fields
    grid: {aug_num: [1, 8], clip_guidance_lambda: [100, 1000]}                  # swept fields
    seeds: [0, 1]                     # or a count: 2 -> seeds 0, 1
    inputs:
      - {image: a.png, mask: a_mask.png, prompt: "a red hat"}   # paths relative to the spec file
      - {manifest: edits.csv}         # a CSV with columns image, mask, prompt
      - {folder: photos/}             # <stem>.png + <stem>_mask.png + <stem>.txt (the prompt)
      - {toy: {scenes: 2, prompts_per_scene: 2, seed: 0}}     # toy-world scenes (speed.toy_suite)
      - {example: insert}             # a ready-made example of blendlab.examples

Specs are strict: an unknown key at any level (the top, ``config``/``grid``, an input, a ``toy``
entry's options, a manifest's columns) is an error naming the key and the nearest valid one
(``seed`` -> ``seeds``, ``model`` -> ``preset``); a file that does not parse names the file, the
line and the column.

Each row is a plain, JSON-ready dict (it crosses process boundaries on Ray): its ``id`` is a hash of
the input (file contents included), the full config and the seed, so the same row has the same id
in every run and a re-run finds its record.

May import: errors, config, images, masks, inputs, presets, examples, speed.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import itertools
import json
from pathlib import Path

from ..config import EditConfig
from ..errors import InputError

__all__ = ["Row", "load_spec", "expand", "validate", "row_id", "row_config", "row_inputs", "row_sources",
           "prepare_row"]

Row = dict
_FIELDS = {f.name for f in dataclasses.fields(EditConfig)}
_PER_ROW = {"prompt", "init_image", "mask", "seed"}
#: The keys of a spec's top level (``base``: the folder relative paths start from, default the file's).
TOP_KEYS = ("preset", "config", "grid", "seeds", "inputs", "base")
#: The keys of each kind of input (the first key of each names the kind; plain files have none).
INPUT_KEYS = {"toy": ("toy",), "example": ("example", "prompt", "name"), "manifest": ("manifest",),
              "folder": ("folder", "prompt"), "files": ("image", "mask", "prompt", "name")}
MANIFEST_COLUMNS = ("image", "mask", "prompt", "name")
#: Words a spec writer reaches for that mean a key of another name.
SYNONYMS = {"model": "preset", "models": "preset", "seed": "seeds", "input": "inputs", "settings": "config",
            "sweep": "grid", "params": "grid", "file": "image", "img": "image", "text": "prompt",
            "caption": "prompt", "init_image": "image"}


def nearest(key: str, valid) -> str | None:
    """The valid key ``key`` most likely meant (a known synonym, else the closest spelling), or None."""
    valid = list(valid)
    if SYNONYMS.get(str(key).lower()) in valid:
        return SYNONYMS[str(key).lower()]
    close = difflib.get_close_matches(str(key).lower(), valid, n=1, cutoff=0.6)
    return close[0] if close else None


def check_keys(keys, valid, where: str) -> None:
    """Raise :class:`InputError` for the first key of ``keys`` not in ``valid``, with its nearest."""
    for key in keys:
        if key not in valid:
            guess = nearest(key, valid)
            hint = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(sorted(valid))}"
            raise InputError(f"{where}: unknown key {key!r}; {hint}")


def _parse_error(path: Path, kind: str, exc: Exception) -> InputError:
    """``<file>:<line>:<column>: <problem>`` (1-based) of a YAML, TOML or JSON syntax error."""
    import re

    line = col = None
    if kind == "YAML":
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line, col = mark.line + 1, mark.column + 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    elif kind == "JSON":
        line, col, problem = exc.lineno, exc.colno, exc.msg
    else:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if found:
            line, col = int(found.group(1)), int(found.group(2))
        elif "(at end of document)" in str(exc):  # the line after the last one
            text = path.read_text()
            line, col = text.count("\n") + 1, len(text.rsplit("\n", 1)[-1]) + 1
        problem = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
    where = f"{path}:{line}:{col}" if line else str(path)
    return InputError(f"sweep spec {where}: {problem}; fix the {kind} there")


def load_spec(spec) -> dict:
    """A spec dict from a dict, or a ``.yaml``/``.yml``/``.toml``/``.json`` file (its folder becomes
    ``base`` for relative input paths)."""
    if isinstance(spec, dict):
        check_keys(spec, TOP_KEYS, "sweep spec")
        return dict(spec)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec {path}: no such file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"sweep spec {path}: YAML needs PyYAML (pip install pyyaml); "
                             "or write the spec as .toml or .json") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _parse_error(path, "YAML", exc) from None
    elif path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _parse_error(path, "TOML", exc) from None
    elif path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _parse_error(path, "JSON", exc) from None
    else:
        raise InputError(f"sweep spec {path}: use a .yaml, .toml or .json file")
    if not isinstance(data, dict):
        raise InputError(f"sweep spec {path}: expected a mapping at the top level")
    check_keys(data, TOP_KEYS, f"sweep spec {path}")
    data.setdefault("base", str(path.parent))
    return data


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def _inputs(spec: dict) -> list[dict]:
    """Every input of the spec as a JSON-ready description."""
    base = Path(spec.get("base", "."))
    out = []
    for entry in spec.get("inputs") or []:
        if not isinstance(entry, dict):
            raise InputError(f"sweep input {entry!r}: expected a mapping (image/mask/prompt, manifest, folder, toy or example)")
        kinds = [k for k in ("toy", "example", "manifest", "folder") if k in entry]
        if len(kinds) > 1:
            raise InputError(f"sweep input {entry!r}: one kind per input, not {' and '.join(kinds)}; "
                             "split it into one input each")
        # an input of a kind takes that kind's keys; one of none (files) is told of every kind's
        valid = INPUT_KEYS[kinds[0]] if kinds else sorted({k for keys in INPUT_KEYS.values() for k in keys})
        check_keys(entry, valid, f"sweep input {entry!r}")
        if "toy" in entry:
            from ..speed import toy_suite

            opts = dict(entry["toy"] or {})
            check_keys(opts, ("scenes", "prompts_per_scene", "seed"), f"sweep input toy {opts!r}")
            for item in toy_suite(**opts):
                out.append(dict(kind="toy", toy=opts, index=item.index, prompt=item.prompt,
                                name=f"toy{item.index}", colour=item.colour, shape=item.shape))
        elif "example" in entry:
            out.append(dict(kind="example", example=entry["example"], prompt=entry.get("prompt"),
                            name=entry.get("name", entry["example"])))
        elif "manifest" in entry:
            manifest = base / entry["manifest"]
            if not manifest.is_file():
                raise FileNotFoundError(f"sweep manifest {manifest}: no such file")
            with open(manifest, newline="") as f:
                reader = csv.DictReader(f)
                check_keys(reader.fieldnames or [], MANIFEST_COLUMNS, f"sweep manifest {manifest} (columns)")
                for r in reader:
                    out.append(_file_input(manifest.parent, r.get("image"), r.get("mask"), r.get("prompt"), r.get("name")))
        elif "folder" in entry:
            folder = base / entry["folder"]
            if not folder.is_dir():
                raise FileNotFoundError(f"sweep folder {folder}: no such folder")
            for img in sorted(folder.glob("*.png")):
                if img.stem.endswith("_mask"):
                    continue
                txt = img.with_suffix(".txt")
                prompt = txt.read_text().strip() if txt.is_file() else entry.get("prompt")
                mask = img.with_name(img.stem + "_mask.png")
                out.append(_file_input(folder, img.name, mask.name if mask.is_file() else None, prompt, img.stem))
        else:
            out.append(_file_input(base, entry.get("image"), entry.get("mask"), entry.get("prompt"), entry.get("name")))
    if not out:
        raise InputError("the sweep spec has no inputs; add 'inputs:' (image/mask/prompt, manifest, folder, toy or example)")
    return out


def _file_input(base: Path, image, mask, prompt, name) -> dict:
    image_path = str((base / image).resolve()) if image else None
    mask_path = str((base / mask).resolve()) if mask else None
    return dict(kind="files", image=image_path, mask=mask_path, prompt=prompt,
                name=name or (Path(image).stem if image else "?"),
                digest=[_file_digest(Path(p)) if p else None for p in (image_path, mask_path)])


def _seeds(spec: dict) -> list[int]:
    seeds = spec.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    return [int(s) for s in seeds]


def row_id(inp: dict, config: dict, seed: int) -> str:
    """The deterministic id of a row: a hash of its input (paths and file contents), config and seed."""
    key = {k: v for k, v in inp.items() if k not in ("image", "mask") or inp["kind"] != "files"}
    blob = json.dumps(dict(input=key, config=config, seed=seed), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def expand(spec) -> list[Row]:
    """The rows of a spec: every input × every combination of ``grid`` × every seed, in that order.

    Each row: ``id``, ``preset``, ``input`` (description), ``config`` (the EditConfig fields it sets:
    ``config`` of the spec, then the grid's), ``setting`` (the grid's values only), ``seed``."""
    spec = load_spec(spec)
    grid = spec.get("grid") or {}
    for part in ("config", "grid"):
        check_keys(spec.get(part) or {}, sorted(_FIELDS), f"sweep spec {part} (EditConfig fields)")
    per_row = sorted((set(grid) | set(spec.get("config") or {})) & _PER_ROW)
    if per_row:
        raise InputError(f"sweep spec: {per_row} come from the inputs and seeds, not from config/grid")
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in grid.values()]
    rows = []
    for inp in _inputs(spec):
        for combo in itertools.product(*values):
            setting = dict(zip(keys, combo))
            config = {**(spec.get("config") or {}), **setting}
            for seed in _seeds(spec):
                rows.append(dict(id=row_id(inp, config, seed), preset=spec.get("preset", "tiny"),
                                 input=inp, config=config, setting=setting, seed=seed))
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError("sweep spec: some rows are the same input, config and seed; remove the duplicates")
    return rows


def row_config(row: Row) -> EditConfig:
    """The row's EditConfig (validated when made)."""
    return EditConfig(**row["config"], prompt=row["input"].get("prompt") or "", seed=row["seed"])


def row_sources(row: Row, size: int):
    """``(image, mask)`` of a row as the front door takes them: tensors at ``size`` for toy scenes and
    examples, the files' paths (the mask's or None: the whole image) for files."""
    inp = row["input"]
    if inp["kind"] == "toy":
        from ..speed import toy_suite

        item = toy_suite(**{"size": size, **inp["toy"]})[inp["index"]]
        return item.image, item.mask
    if inp["kind"] == "example":
        from ..examples import example

        ex = example(inp["example"], toy=row["preset"] == "toy", size=size)
        return ex.image, ex.mask
    if not inp.get("image"):
        raise InputError(f"input {inp.get('name')}: no image given")
    return inp["image"], inp.get("mask") or None


def _prepared(models, row: Row, cfg: EditConfig | None = None):
    """The row through the front door (:func:`blendlab.inputs.prepare`), nothing refused yet."""
    from ..inputs import prepare
    from ..presets import image_size

    size = image_size(models) if isinstance(models, str) else int(models.image_size)
    return prepare(models, *row_sources(row, size), cfg or row_config(row))


def prepare_row(models, row: Row, cfg: EditConfig | None = None):
    """The row's :class:`~blendlab.inputs.EditInputs` through the front door
    (:func:`blendlab.inputs.prepare`), for ``models`` or the row's preset's name, with the row's
    config (or ``cfg`` in its place). A sweep refuses an empty prompt with guidance on (the words the
    edit would warn with)."""
    from ..errors import UnguidedWarning

    return _prepared(models, row, cfg).refusing(UnguidedWarning)


def row_inputs(row: Row, size: int):
    """``(image (1, 3, S, S), mask (1, 1, S, S))`` of a row at its preset's size S (``size`` must be
    it), checked by the front door (:func:`blendlab.inputs.prepare`: the same checks and words as
    :func:`prepare_row`, except that an empty prompt is not refused: the tensors do not need one)."""
    from ..presets import image_size

    works_at = image_size(row["preset"])
    if works_at != size:
        raise InputError(f"row {row['id']}: its preset {row['preset']!r} works at {works_at} px, not {size}; "
                         "pass that size")
    inputs = _prepared(row["preset"], row)
    return inputs.image, inputs.mask


def _example_prompt(row: Row, size: int) -> None:
    if row["input"]["kind"] == "example" and not row["input"].get("prompt"):
        from ..examples import example

        row["input"]["prompt"] = example(row["input"]["example"], toy=row["preset"] == "toy", size=size).prompt


def validate(rows: list[Row]) -> list[Row]:
    """Check every row before any model loads: the preset, the config, the prompt, the image and the
    mask (read at the preset's size). Raises one :class:`InputError` naming every bad row."""
    from ..presets import check_preset, image_size

    problems, said = [], set()
    for row in rows:
        try:
            check_preset(row["preset"])
            _example_prompt(row, image_size(row["preset"]))
            inputs = prepare_row(row["preset"], row)
            for record in inputs.warnings:  # each said once, however many rows share it
                if record.message not in said:
                    said.add(record.message)
                    record.warn(stacklevel=2)
        except (InputError, ValueError, FileNotFoundError, OSError) as exc:
            problems.append(f"row {row['id']} ({row['input'].get('name')}, {row['setting']}, seed {row['seed']}): {exc}")
    if problems:
        raise InputError(f"{len(problems)} of {len(rows)} sweep rows are bad (nothing was run):\n  "
                         + "\n  ".join(problems))
    return rows
