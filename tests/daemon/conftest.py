"""Process-level fixtures: the real holdmetricsd binary on free loopback
ports, and gRPC stubs generated from proto/hold.proto at test time."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("HOLDMETRICSD", ROOT / "bin" / "holdmetricsd"))

# The seed's protocol, its file verbatim (testdata/seed/hold.proto): the
# daemon must serve clients generated from it unchanged.
SEED_PROTO = (ROOT / "testdata" / "seed" / "hold.proto").read_text(encoding="utf-8")


def _generate(proto_dir: Path, name: str, out: Path) -> None:
    from grpc_tools import protoc  # type: ignore[import-untyped]
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", str(proto_dir / name)])
    assert rc == 0, f"protoc failed for {name}"


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory):
    """(hold_pb2, hold_pb2_grpc) generated from the repository's proto."""
    out = tmp_path_factory.mktemp("gen")
    _generate(ROOT / "proto", "hold.proto", out)
    sys.path.insert(0, str(out))
    return importlib.import_module("hold_pb2"), importlib.import_module("hold_pb2_grpc")


@pytest.fixture(scope="session")
def seed_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with seedhold_pb2(_grpc): the seed's client code. It
    declares the same package as hold.proto, so it is used from a separate
    interpreter (one protobuf descriptor pool cannot hold both)."""
    seed_dir = tmp_path_factory.mktemp("seedproto")
    out = seed_dir / "gen"
    out.mkdir()
    (seed_dir / "seedhold.proto").write_text(SEED_PROTO, encoding="utf-8")
    _generate(seed_dir, "seedhold.proto", out)
    return out


class Daemon:
    """One holdmetricsd process; start() waits for its "listening" log line."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc: subprocess.Popen[str] | None = None
        self.grpc = ""
        self.http = ""
        self.log: list[dict] = []
        self._lines: list[str] = []

    def start(self, timeout: float = 20) -> "Daemon":
        args = [str(BINARY), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
                "--data-dir", str(self.data_dir), *self.extra]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log, self._lines = [], []
        ready = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stderr
            for line in self.proc.stderr:
                self._lines.append(line)
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                self.log.append(rec)
                if rec.get("msg") == "holdmetricsd listening":
                    self.grpc, self.http = rec["grpc"], rec["http"]
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.grpc:
            self.kill()
            raise AssertionError("daemon did not start:\n" + "".join(self._lines))
        return self

    def output(self) -> str:
        return "".join(self._lines)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def record(self, name: str) -> dict:
        return next(r for r in self.log if r.get("msg") == name)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def make(*extra: str, data_dir: Path | None = None) -> Daemon:
        d = Daemon(data_dir or tmp_path / "data", *extra)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()


def wait_until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
