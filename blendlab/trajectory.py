"""Recorded trajectories: the steps a :class:`blendlab.Recorder` keeps, and their file.

- :class:`RecordedStep`: one recorded reverse step (scalars and CPU copies of the chosen fields).
- :func:`write_trajectory` / :func:`read_trajectory`: the file behind ``Recorder.save`` and
  ``Recorder.load`` (its layout is documented on :class:`blendlab.Recorder`). Reading never runs code:
  JSON, and numpy arrays read with ``allow_pickle=False``.
- :func:`steps_of`, :func:`pair_steps`, :func:`step_distances`: which steps of two recordings belong
  together (by step index, or by timestep when the step counts differ) and how far apart they are;
  they live in :mod:`blendlab.trajectory_compare` and are re-exported here.

May import: errors, images, sampler, trajectory_compare, vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .errors import InputError, TrajectoryError
from .images import atomic_write, existing_file
from .sampler import EditConfig
from .vocabulary import keeps_old_t, step_label
from .trajectory_compare import (  # noqa: F401  (re-exported)
    SYNCS,
    StepDistances,
    abs_difference,
    match_size,
    pair_steps,
    step_distances,
    steps_of,
)

__all__ = ["RecordedStep", "FORMAT", "FORMAT_VERSION", "write_trajectory", "read_trajectory", "steps_of",
           "pair_steps", "StepDistances", "step_distances"]

FORMAT = "blendlab-trajectory"
FORMAT_VERSION = 1
META = "meta.json"
#: torch dtypes a trajectory file stores, by name; bfloat16 is kept as its 16 bits (numpy has no bfloat16).
_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64,
           "bfloat16": torch.bfloat16, "uint8": torch.uint8}
_NPY_HEADER_MAX = 1 << 16  # bytes: the .npy header of an array is far smaller
#: The settings classes a trajectory file can hold, by class name (``meta.json``'s ``config_class``).
#: Rooms above this one add theirs: :mod:`blendlab.latent.config` adds ``LatentConfig`` when imported.
SETTINGS_CLASSES: dict[str, type] = {"EditConfig": EditConfig}


@keeps_old_t
@dataclasses.dataclass
class RecordedStep:
    """A recorded step: scalars plus CPU copies of the chosen fields, (B, 3, h, w).

    The names are :mod:`blendlab.vocabulary`'s: ``index`` is the step k (from 0) of ``num_steps``,
    ``timestep`` the t of the 1000-step schedule it stands for, ``alpha_bar`` its ᾱ_t;
    ``respaced_index`` is the respaced index the sampler used (internal: no label shows it; ``.t``
    is its deprecated old name). ``sample_ids`` says which samples of the initial batch the rows are
    (pruning drops some).
    """

    iteration: int
    index: int
    respaced_index: int
    alpha_bar: float
    num_steps: int
    losses: dict
    fields: Mapping
    timestep: int | None = None
    sample_ids: tuple | None = None

    @property
    def label(self) -> str:
        """``"step 3/10 · t=473"``: :func:`blendlab.vocabulary.step_label` (step from 0; t of the
        1000-step schedule when recorded)."""
        return step_label(self.index, self.num_steps, self.timestep)


# -- writing ------------------------------------------------------------------------------------
def _dtype_name(x: torch.Tensor) -> str:
    name = str(x.dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise InputError(f"cannot save a {name} tensor; record with dtype=torch.float16 or torch.float32")
    return name


def _spec(x: torch.Tensor) -> dict:
    return {"dtype": _dtype_name(x), "shape": list(x.shape)}


def _write_member(zf: zipfile.ZipFile, name: str, x: torch.Tensor) -> None:
    x = x.detach().cpu().contiguous()
    if x.dtype == torch.bfloat16:
        x = x.view(torch.int16)
    arr = x.numpy()
    with zf.open(name, "w", force_zip64=True) as fp:
        np.lib.format.write_array_header_1_0(fp, np.lib.format.header_data_from_array_1_0(arr))
        fp.write(memoryview(arr).cast("B"))  # no copy


def write_trajectory(path, *, steps, mask, init_image, cfg, preset, settings: dict, version: str) -> Path:
    """Write a recording to ``path`` atomically (see :class:`blendlab.Recorder` for the layout)."""
    arrays: list[tuple[str, torch.Tensor]] = []
    extra = {}
    for name, value in (("mask", mask), ("init_image", init_image)):
        if value is not None:
            arrays.append((f"{name}.npy", value))
            extra[name] = {"member": f"{name}.npy", **_spec(value)}
    step_meta = []
    for k, s in enumerate(steps):
        members = {}
        for name in s.fields:
            value = s.fields[name]
            member = f"steps/{k:05d}/{name}.npy"
            arrays.append((member, value))
            members[name] = {"member": member, **_spec(value)}
        step_meta.append({
            "iteration": int(s.iteration), "index": int(s.index), "respaced_index": int(s.respaced_index),
            "t": int(s.respaced_index),  # the old name, for one release: files open in the release before
            "timestep": None if s.timestep is None else int(s.timestep),
            "alpha_bar": float(s.alpha_bar), "num_steps": int(s.num_steps),
            "losses": {k2: float(v) for k2, v in s.losses.items()},
            "sample_ids": None if s.sample_ids is None else [int(i) for i in s.sample_ids],
            "fields": members,
        })
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "blendlab_version": version,
        "preset": preset,
        "config": None if cfg is None else dataclasses.asdict(cfg),
        "config_class": None if cfg is None else type(cfg).__name__,
        "recorder": settings,
        **extra,
        "steps": step_meta,
    }
    try:
        text = json.dumps(meta, indent=1)
    except TypeError as exc:  # e.g. a tensor put into an EditConfig field
        raise InputError(f"the recording's settings cannot be written as JSON ({exc}); EditConfig fields "
                         "must be numbers, strings, booleans or None") from None

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(META, text)  # first: `unzip -p file.npz meta.json` shows it
            for member, value in arrays:
                _write_member(zf, member, value)

    return atomic_write(path, write)


# -- reading ------------------------------------------------------------------------------------
def _what_is(path: Path) -> str:
    """What a file that is not a readable trajectory is (from its first bytes), and what to do."""
    with open(path, "rb") as f:
        head = f.read(8)
    again = "save the recording again (or copy the whole file again)"
    other = "load a file written by recorder.save(path)"
    if not head:
        return f"it is empty (an interrupted save?); {again}"
    if head.startswith(b"PK"):
        return f"it starts like a zip archive but its end is missing: the file is truncated; {again}"
    if head.startswith(b"\x93NUMPY"):
        return f"it is a single .npy array; {other}"
    if head.startswith(b"\x89PNG"):
        return f"it is a PNG image; {other}"
    if head.startswith(b"\x80"):
        return f"it is a Python pickle (never loaded: it could run code); {other}"
    return f"its format is unknown (first bytes {head!r}); {other}"


class _Archive:
    """The file a recording was loaded from: lazily loaded fields are read from it on first use."""

    def __init__(self, path: Path):
        self.path = path
        st = path.stat()
        self.stamp = (st.st_size, st.st_mtime_ns)

    def _check(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise TrajectoryError(f"{self.path} was removed after it was loaded; its steps are read on first "
                                  "use: load it with lazy=False to read everything at once") from None
        if (st.st_size, st.st_mtime_ns) != self.stamp:
            raise TrajectoryError(f"{self.path} changed after it was loaded; load it again")

    def read(self, spec: dict) -> torch.Tensor:
        self._check()
        try:
            with zipfile.ZipFile(self.path) as zf:
                return _read_member(zf, spec, self.path)
        except zipfile.BadZipFile as exc:
            raise TrajectoryError(f"{self.path} is corrupt ({exc}); save the recording again") from None


def _read_member(zf: zipfile.ZipFile, spec: dict, path: Path) -> torch.Tensor:
    member = spec["member"]
    try:
        with zf.open(member) as fp:
            arr = np.lib.format.read_array(fp, allow_pickle=False)
    except KeyError:
        raise TrajectoryError(f"{path} lacks {member}, which its meta.json lists: the file is damaged") from None
    except zipfile.BadZipFile as exc:
        raise TrajectoryError(f"{path}: {member} is corrupt ({exc}); save the recording again") from None
    except (ValueError, EOFError, OSError) as exc:
        raise TrajectoryError(f"{path}: {member} cannot be read as an array ({exc}); the file is damaged "
                              "or not written by blendlab (object arrays are never loaded)") from None
    want = tuple(spec["shape"])
    if tuple(arr.shape) != want:
        raise TrajectoryError(f"{path}: {member} is {tuple(arr.shape)}, meta.json says {want}: the file is damaged")
    x = torch.from_numpy(arr)
    if spec["dtype"] == "bfloat16":
        x = x.view(torch.bfloat16)
    elif str(x.dtype).removeprefix("torch.") != spec["dtype"]:
        raise TrajectoryError(f"{path}: {member} holds {x.dtype}, meta.json says {spec['dtype']}: the file is damaged")
    return x


class LazyFields(Mapping):
    """The fields of one loaded step: each tensor is read from the file on first access, then kept."""

    def __init__(self, archive: _Archive, specs: dict):
        self._archive, self._specs, self._cache = archive, specs, {}

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            self._cache[name] = self._archive.read(self._specs[name])  # KeyError for unknown names
        return self._cache[name]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def nbytes(self) -> int:
        """Bytes of the fields once loaded (from the file's metadata: nothing is read)."""
        return sum(math.prod(s["shape"]) * _DTYPES[s["dtype"]].itemsize for s in self._specs.values())

    def __repr__(self) -> str:
        return f"LazyFields({', '.join(self._specs)}; loaded: {', '.join(self._cache) or 'none'})"


def _check_spec(spec, where: str, zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        member, dtype, shape = spec["member"], spec["dtype"], [int(v) for v in spec["shape"]]
    except (TypeError, KeyError, ValueError):
        raise TrajectoryError(f"{path}: meta.json describes {where} badly ({spec!r}): the file is damaged") from None
    if dtype not in _DTYPES:
        raise TrajectoryError(f"{path}: {where} has dtype {dtype!r}, which this blendlab does not read")
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise TrajectoryError(f"{path} lacks {member} ({where}): the file is damaged") from None
    data = math.prod(shape) * _DTYPES[dtype].itemsize
    if not data <= info.file_size <= data + _NPY_HEADER_MAX:
        raise TrajectoryError(f"{path}: {member} holds {info.file_size} bytes, {where} needs {data}: "
                              "the file is damaged")
    return {"member": member, "dtype": dtype, "shape": shape}


def _config(raw, path: Path, class_name: str | None = None):
    if raw is None:
        return None
    class_name = class_name or "EditConfig"  # files written before config_class hold EditConfigs
    cls = SETTINGS_CLASSES.get(class_name)
    if cls is None:
        hint = (" (a Blended Latent Diffusion run: `import blendlab.latent` before loading it)"
                if class_name == "LatentConfig" else "")
        warnings.warn(f"{path}: its settings are a {class_name}, which this blendlab cannot read{hint}; "
                      "recorder.cfg is None and the raw settings are in recorder.meta['config']", stacklevel=3)
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        warnings.warn(f"{path}: settings {unknown} are unknown to this blendlab (a newer version wrote the "
                      f"file?); the {class_name} leaves them out", stacklevel=3)
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})
    except (TypeError, ValueError) as exc:
        warnings.warn(f"{path}: the saved {class_name} is not valid here ({exc}); recorder.cfg is None and "
                      "the raw settings are in recorder.meta['config']", stacklevel=3)
        return None


def read_trajectory(path, lazy: bool = True) -> dict:
    """Read a file written by :func:`write_trajectory`.

    Returns a dict: ``steps`` (RecordedStep list; with ``lazy`` their ``fields`` are read on first
    access), ``mask``, ``init_image`` (tensors or None), ``cfg`` (the run's settings: an EditConfig, a class of :data:`SETTINGS_CLASSES` named by
    ``config_class``, or None), ``preset``,
    ``settings`` (the recorder's), ``meta`` (the whole meta.json). Raises FileNotFoundError for a
    missing file and :class:`TrajectoryError` for a file that is truncated, corrupt, another format
    or a newer format version.
    """
    path = existing_file(path, "no trajectory file at {path}; save one with recorder.save(path)",
                         "{path} is a folder; pass the path of a file written by recorder.save")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise TrajectoryError(f"{path} is not a blendlab trajectory: {_what_is(path)}") from None
    with zf:
        try:
            raw = zf.read(META)
        except KeyError:
            kind = "a torch checkpoint" if any(n.endswith("data.pkl") for n in zf.namelist()) else "a zip/.npz archive"
            raise TrajectoryError(f"{path} is {kind} without {META}: not a blendlab trajectory; load a file "
                                  "written by recorder.save(path)") from None
        except zipfile.BadZipFile as exc:
            raise TrajectoryError(f"{path} is corrupt ({exc}); save the recording again") from None
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrajectoryError(f"{path}: {META} is not valid JSON ({exc}); the file is damaged") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise TrajectoryError(f"{path} holds a {META} of another format "
                                  f"({meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}), "
                                  f"not {FORMAT!r}")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise TrajectoryError(f"{path} was written by a newer blendlab ({meta.get('blendlab_version')}, "
                                  f"format version {version}); this one reads up to version {FORMAT_VERSION}: "
                                  "upgrade blendlab (pip install -U blendlab)")
        archive = _Archive(path)
        try:
            extras = {name: _check_spec(meta[name], name, zf, path) if meta.get(name) else None
                      for name in ("mask", "init_image")}
            specs = [{name: _check_spec(spec, f"step {k} {name}", zf, path) for name, spec in s["fields"].items()}
                     for k, s in enumerate(meta["steps"])]
            steps = [RecordedStep(iteration=int(s["iteration"]), index=int(s["index"]),
                                  respaced_index=int(s["respaced_index"] if "respaced_index" in s else s["t"]),
                                  alpha_bar=float(s["alpha_bar"]), num_steps=int(s["num_steps"]),
                                  losses=dict(s["losses"]), fields=LazyFields(archive, spec),
                                  timestep=s.get("timestep"),
                                  sample_ids=None if s.get("sample_ids") is None else tuple(s["sample_ids"]))
                     for s, spec in zip(meta["steps"], specs)]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TrajectoryError):
                raise
            raise TrajectoryError(f"{path}: {META} lacks or garbles {exc}; the file is damaged") from None
        tensors = {name: (None if spec is None else _read_member(zf, spec, path)) for name, spec in extras.items()}
        if not lazy:
            for s in steps:
                s.fields = {name: s.fields[name] for name in s.fields}
    return {"steps": steps, **tensors, "cfg": _config(meta.get("config"), path, meta.get("config_class")), "preset": meta.get("preset"),
            "settings": meta.get("recorder") or {}, "meta": meta}




