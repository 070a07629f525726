"""Tests for blendlab.download: a local HTTP server on 127.0.0.1 plays official host and mirrors."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pathlib
import socket
import threading

import pytest
import torch

from blendlab.download import RemoteFile, blendlab_home, ensure_file
from blendlab.errors import DownloadError, WeightsNotFoundError

FILENAME = "tiny_linear.pt"


def _checkpoint_bytes() -> bytes:
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(4, 3).state_dict(), buf)
    return buf.getvalue()


PAYLOAD = _checkpoint_bytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /ok, /missing (404), /truncated (half the announced bytes), /truncated-nohead
    (same, but HEAD is refused with 405), /wrong (same length, other bytes)."""

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        self.server.requests.append((self.command, self.path))  # type: ignore[attr-defined]
        route = self.path
        if route == "/missing" or (route == "/truncated-nohead" and not body):
            self.send_error(404 if route == "/missing" else 405)
            return
        if route not in {"/ok", "/truncated", "/truncated-nohead", "/wrong", "/stall"}:
            self.send_error(404)
            return
        data = bytes(reversed(PAYLOAD)) if route == "/wrong" else PAYLOAD
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not body:
            return
        if route == "/stall":  # half the bytes, then silence (the connection stays open)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.server.release.wait(10)  # type: ignore[attr-defined]
            return
        if route.startswith("/truncated"):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("BLENDLAB_OFFLINE", raising=False)
    monkeypatch.setenv("BLENDLAB_HOME", str(tmp_path / "home"))  # never touch the real home


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests = []  # type: ignore[attr-defined]
    srv.release = threading.Event()  # type: ignore[attr-defined]
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = srv.server_address[1]
    srv.url = lambda route: f"http://127.0.0.1:{port}{route}"  # type: ignore[attr-defined]
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/ok"


def _leftovers(cache: pathlib.Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name not in {FILENAME, FILENAME + ".sha256"})


def test_download_success_writes_verified_file_and_sidecar(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/ok"),), description="test linear layer")
    path = ensure_file(remote, cache_dir=cache, progress=True)
    assert path == cache / FILENAME
    assert path.read_bytes() == PAYLOAD
    state = torch.load(path, weights_only=True)
    assert state["weight"].shape == (3, 4)
    assert (cache / (FILENAME + ".sha256")).read_text().split()[0] == SHA
    assert _leftovers(cache) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_download_follows_the_umask(server, cache, umask):
    old = os.umask(umask)
    try:
        path = ensure_file(RemoteFile(FILENAME, (server.url("/ok"),)), cache_dir=cache, progress=False)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert _leftovers(cache) == []


def test_known_hash_and_size_accepted(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/ok"),), sha256=SHA, size=len(PAYLOAD))
    path = ensure_file(remote, cache_dir=cache, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_cache_hit_makes_no_request(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/ok"),))
    ensure_file(remote, cache_dir=cache, progress=False)
    count = len(server.requests)
    assert count >= 1
    assert ensure_file(remote, cache_dir=cache, progress=False) == cache / FILENAME
    assert len(server.requests) == count


def test_default_cache_dir_under_blendlab_home(server, tmp_path):
    remote = RemoteFile(FILENAME, (server.url("/ok"),))
    path = ensure_file(remote, progress=False)
    assert path == tmp_path / "home" / "checkpoints" / FILENAME


def test_mirror_fallback_after_404(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/missing"), server.url("/ok")))
    path = ensure_file(remote, cache_dir=cache, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert ("GET", "/ok") in server.requests


@pytest.mark.parametrize("route", ["/truncated", "/truncated-nohead"])
def test_interrupted_transfer_is_rejected(server, cache, route):
    remote = RemoteFile(FILENAME, (server.url(route),))
    with pytest.raises(DownloadError) as info:
        ensure_file(remote, cache_dir=cache, progress=False)
    msg = str(info.value)
    assert "interrupted" in msg and f"{len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes" in msg
    assert str(cache / FILENAME) in msg
    assert not (cache / FILENAME).exists()
    assert list(cache.iterdir()) == []


def test_sha256_mismatch_is_rejected(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/wrong"),), sha256=SHA)
    with pytest.raises(DownloadError) as info:
        ensure_file(remote, cache_dir=cache, progress=False)
    assert "sha256 mismatch" in str(info.value) and SHA in str(info.value)
    assert list(cache.iterdir()) == []


def test_size_mismatch_is_rejected(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/ok"),), size=len(PAYLOAD) + 1)
    with pytest.raises(DownloadError, match="size mismatch"):
        ensure_file(remote, cache_dir=cache, progress=False)
    assert list(cache.iterdir()) == []


def test_offline_env_not_cached(server, cache, monkeypatch):
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    remote = RemoteFile(FILENAME, (server.url("/ok"), "https://mirror.example/tiny_linear.pt"))
    with pytest.raises(WeightsNotFoundError) as info:
        ensure_file(remote, cache_dir=cache, progress=False)
    msg = str(info.value)
    assert str(cache / FILENAME) in msg and FILENAME in msg
    assert server.url("/ok") in msg and "https://mirror.example/tiny_linear.pt" in msg
    assert server.requests == []
    assert isinstance(info.value, FileNotFoundError)


def test_offline_still_uses_cache(server, cache, monkeypatch):
    remote = RemoteFile(FILENAME, (server.url("/ok"),))
    ensure_file(remote, cache_dir=cache, progress=False)
    monkeypatch.setenv("BLENDLAB_OFFLINE", "true")
    assert ensure_file(remote, cache_dir=cache, progress=False) == cache / FILENAME


def test_connection_refused_everywhere(cache):
    urls = (_dead_url(), _dead_url())
    remote = RemoteFile(FILENAME, urls, description="test linear layer")
    with pytest.raises(DownloadError) as info:
        ensure_file(remote, cache_dir=cache, progress=False)
    msg = str(info.value)
    assert "every URL failed" in msg
    assert msg.count("connection refused") == 2
    assert all(u in msg for u in urls)
    assert str(cache / FILENAME) in msg
    assert not (cache / FILENAME).exists()
    assert list(cache.iterdir()) == []


def test_local_path_used_without_network(server, tmp_path):
    local = tmp_path / "mine.pt"
    local.write_bytes(PAYLOAD)
    remote = RemoteFile(FILENAME, (server.url("/ok"),), sha256=SHA)
    assert ensure_file(remote, local_path=local) == local
    assert server.requests == []


def test_local_path_missing_or_wrong(server, tmp_path):
    remote = RemoteFile(FILENAME, (server.url("/ok"),), sha256=SHA)
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsNotFoundError, match="nope.pt"):
        ensure_file(remote, local_path=missing)
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsNotFoundError, match="sha256 mismatch"):
        ensure_file(remote, local_path=wrong)
    assert server.requests == []


def test_corrupted_cache_is_redownloaded(server, cache):
    remote = RemoteFile(FILENAME, (server.url("/ok"),))
    path = ensure_file(remote, cache_dir=cache, progress=False)
    path.write_bytes(PAYLOAD[: len(PAYLOAD) // 2])  # truncated after its sidecar was written
    count = len(server.requests)
    assert ensure_file(remote, cache_dir=cache, progress=False) == path
    assert len(server.requests) > count
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(cache) == []


def test_corrupted_cache_offline_says_so(server, cache, monkeypatch):
    remote = RemoteFile(FILENAME, (server.url("/ok"),), sha256=SHA)
    cache.mkdir()
    (cache / FILENAME).write_bytes(b"garbage")
    monkeypatch.setenv("BLENDLAB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        ensure_file(remote, cache_dir=cache, progress=False)
    assert "corrupt" in str(info.value) and str(cache / FILENAME) in str(info.value)
    assert server.requests == []


def test_blendlab_home_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BLENDLAB_HOME", str(tmp_path / "elsewhere"))
    assert blendlab_home() == tmp_path / "elsewhere"
    assert not (tmp_path / "elsewhere").exists()
    monkeypatch.delenv("BLENDLAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "fakehome"))
    assert blendlab_home() == tmp_path / "fakehome" / ".cache" / "blendlab"


def test_stalled_transfer_times_out_and_leaves_nothing(server, cache, monkeypatch):
    import blendlab.download as dl

    monkeypatch.setattr(dl, "_READ_TIMEOUT", 0.5)
    before = socket.getdefaulttimeout()
    remote = RemoteFile(FILENAME, (server.url("/stall"),))
    with pytest.raises(DownloadError, match="timed out"):
        ensure_file(remote, cache_dir=cache, progress=False)
    assert socket.getdefaulttimeout() == before  # the process-wide default is restored
    assert not (cache / FILENAME).exists() and _leftovers(cache) == []
