"""Download, cache and verify checkpoint files.

``ensure_file`` returns a local path to a verified copy of a ``RemoteFile``: a file given by hand,
a cache hit, or a fresh download (official URL first, then mirrors). Downloads land in a temporary
file next to the final path and are moved into place only after their length and hash check out;
the file's mode follows the umask (``0o666 & ~umask``).

May import: errors, _files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import pathlib
import socket
import sys
import urllib.error
import urllib.request

import torch.hub

from blendlab._files import new_file
from blendlab.errors import DownloadError, WeightsNotFoundError

_CHUNK = 1 << 20
_HEAD_TIMEOUT = 30.0
#: Seconds a download may go without receiving a byte before it counts as stalled.
_READ_TIMEOUT = 60.0


def default_cache_dir() -> pathlib.Path:
    """Where checkpoints are cached unless told otherwise: ``blendlab_home() / "checkpoints"``."""
    return blendlab_home() / "checkpoints"


def blendlab_home() -> pathlib.Path:
    """``$BLENDLAB_HOME`` if set, else ``~/.cache/blendlab``. Not created here."""
    env = os.environ.get("BLENDLAB_HOME")
    return pathlib.Path(env).expanduser() if env else pathlib.Path("~/.cache/blendlab").expanduser()


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its name in the cache, where to get it, and what it must look like."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    description: str = ""


def _label(remote: RemoteFile) -> str:
    return f"{remote.filename} ({remote.description})" if remote.description else remote.filename


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def _problem(path: pathlib.Path, remote: RemoteFile) -> str | None:
    """Why ``path`` is not a good copy of ``remote`` (None if it is)."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size mismatch: expected {remote.size} bytes, got {size}"
    expected, source = remote.sha256, "sha256"
    if expected is None and _sidecar(path).is_file():
        expected = (_sidecar(path).read_text().split() or ["<empty sidecar>"])[0]
        source = f"sha256 (recorded in {_sidecar(path).name} at download)"
    if expected is not None:
        got = sha256_file(path)
        if got.lower() != expected.strip().lower():
            return f"{source} mismatch: expected {expected}, got {got}"
    return None


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else whether ``$BLENDLAB_OFFLINE`` says so (1/true/yes/on)."""
    if offline is not None:
        return offline
    return os.environ.get("BLENDLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _reason(exc: BaseException) -> str:
    """Short human words for a failed transfer."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)
        exc = exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return f"interrupted (connection closed early, {exc.expected} more bytes expected)"
    return f"{type(exc).__name__}: {exc}"


def _content_length(url: str) -> int | None:
    """The Content-Length the server announces for ``url`` (None if it sends none)."""
    for method in ("HEAD", "GET"):  # some hosts refuse HEAD: then read the GET headers only
        req = urllib.request.Request(url, method=method, headers={"User-Agent": "torch.hub"})
        try:
            with urllib.request.urlopen(req, timeout=_HEAD_TIMEOUT) as resp:
                value = resp.headers.get("Content-Length")
            break
        except urllib.error.HTTPError:
            if method == "GET":
                raise
    return int(value) if value and value.strip().isdigit() else None


class _Failed(Exception):
    """One URL failed; the message is the reason."""


def _fetch(url: str, dest: pathlib.Path, remote: RemoteFile, progress: bool) -> str:
    """Download ``url`` to ``dest`` atomically and return its sha256; ``_Failed`` on any problem."""
    try:
        tmp = new_file(dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    except OSError as exc:
        raise _Failed(f"cannot create a temporary file in {dest.parent}: {exc}") from exc
    mode = tmp.stat().st_mode & 0o777  # 0o666 & ~umask; torch moves its own file over this one
    try:
        try:
            expected = _content_length(url)
            # torch's download opens its connection with the global default socket timeout; set one
            # for the transfer so a stalled server fails the URL instead of hanging forever.
            previous = socket.getdefaulttimeout()
            socket.setdefaulttimeout(_READ_TIMEOUT)
            try:
                torch.hub.download_url_to_file(url, str(tmp), hash_prefix=None, progress=progress)
            finally:
                socket.setdefaulttimeout(previous)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _Failed(_reason(exc)) from exc
        got = tmp.stat().st_size
        if expected is not None and got < expected:
            raise _Failed(f"interrupted after {got} of {expected} bytes")
        if expected is not None and got != expected:
            raise _Failed(f"got {got} bytes but the server announced {expected}")
        if remote.size is not None and got != remote.size:
            raise _Failed(f"size mismatch: expected {remote.size} bytes, got {got}")
        digest = sha256_file(tmp)
        if remote.sha256 is not None and digest != remote.sha256.strip().lower():
            raise _Failed(f"sha256 mismatch: expected {remote.sha256}, got {digest}")
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
        return digest
    finally:
        tmp.unlink(missing_ok=True)


def ensure_file(
    remote: RemoteFile,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    offline: bool | None = None,
) -> pathlib.Path:
    """Return the path of a verified copy of ``remote``, downloading it into the cache if needed.

    ``local_path`` is used as is (verified, never downloaded). Otherwise the cache
    (``cache_dir``, default ``blendlab_home()/"checkpoints"``) is checked, then each URL is tried in
    order. ``offline=None`` reads ``$BLENDLAB_OFFLINE``. Raises ``WeightsNotFoundError`` when no
    usable file exists and downloading is off, ``DownloadError`` when every URL failed.
    """
    if local_path is not None:
        path = pathlib.Path(local_path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{_label(remote)}: local file {path} does not exist.")
        if problem := _problem(path, remote):
            raise WeightsNotFoundError(f"{_label(remote)}: local file {path} is bad: {problem}.")
        return path

    cache = pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    dest = cache / remote.filename
    urls = "\n".join(f"  {u}" for u in remote.urls) or "  (no URL known)"
    hint = f"Download it from one of:\n{urls}\nand place it at:\n  {dest}"

    if dest.is_file():
        problem = _problem(dest, remote)
        if problem is None:
            return dest
        if is_offline(offline):
            raise WeightsNotFoundError(
                f"Cached {_label(remote)} at {dest} is corrupt ({problem}) and we are offline. "
                f"Replace it with a good copy. {hint}"
            )
        print(f"blendlab: cached {dest} is corrupt ({problem}); downloading again", file=sys.stderr)
        dest.unlink()
        _sidecar(dest).unlink(missing_ok=True)
    elif is_offline(offline):
        raise WeightsNotFoundError(f"{_label(remote)} is not cached and we are offline. {hint}")

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create cache directory {cache}: {exc}. {hint}") from exc
    failures = []
    for url in remote.urls:
        if progress:
            print(f"blendlab: downloading {_label(remote)} from {url}", file=sys.stderr)
        try:
            digest = _fetch(url, dest, remote, progress)
        except _Failed as exc:
            failures.append(f"  {url}: {exc}")
            continue
        if remote.sha256 is None:
            _sidecar(dest).write_text(f"{digest}  {remote.filename}\n")
        else:
            _sidecar(dest).unlink(missing_ok=True)
        return dest
    listing = "\n".join(failures) or "  (no URL known)"
    raise DownloadError(
        f"Could not download {_label(remote)}; every URL failed:\n{listing}\n"
        f"Download it by hand and place it at:\n  {dest}"
    )
