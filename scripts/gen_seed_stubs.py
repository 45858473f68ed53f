"""Generates poh_holdmetrics.protocols (hold_pb2.py, hold_pb2.pyi, hold_pb2_grpc.py) from the
seed's verbatim proto, testdata/seed/hold.proto, with the pinned grpcio-tools (protoc and
the gRPC plugin in one PyPI wheel; the pin is mk/daemon.mk's GRPCIO_TOOLS).

    python scripts/gen_seed_stubs.py          # rewrite the committed files (make proto)
    python scripts/gen_seed_stubs.py --check  # exit 1 if they differ from a fresh generation

python/tests/test_seed_compat.py imports ``generate`` and compares its output with the
committed and the installed files, so the stubs cannot drift from the proto.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_PROTO = ROOT / "testdata" / "seed" / "hold.proto"
OUT_DIR = ROOT / "python" / "poh_holdmetrics" / "protocols"
GRPCIO_TOOLS_VERSION = "1.85.1"  # = mk/daemon.mk GRPCIO_TOOLS (a test checks they agree)
FILES = ("hold_pb2.py", "hold_pb2.pyi", "hold_pb2_grpc.py")


def generate() -> dict[str, bytes]:
    """{file name: content} of the stubs, generated from SEED_PROTO. The proto is compiled
    as ``hold.proto`` (the seed's file name, so its descriptor is the seed's byte for byte
    and a seed client's own hold_pb2 can live beside ours in one descriptor pool)."""
    try:
        have = metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        raise SystemExit(f"needs grpcio-tools=={GRPCIO_TOOLS_VERSION} (pip install "
                         f"grpcio-tools=={GRPCIO_TOOLS_VERSION})") from None
    if have != GRPCIO_TOOLS_VERSION:
        raise SystemExit(f"grpcio-tools {have} is installed; the stubs are generated with "
                         f"grpcio-tools=={GRPCIO_TOOLS_VERSION} (pip install grpcio-tools=={GRPCIO_TOOLS_VERSION})")
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"  # the well-known types (timestamp, empty)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        shutil.copyfile(SEED_PROTO, src / "hold.proto")
        rc = protoc.main(["protoc", f"-I{src}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
                          f"--grpc_python_out={out}", str(src / "hold.proto")])
        if rc != 0:
            raise SystemExit(f"protoc failed (exit {rc}) on {SEED_PROTO}")
        return {name: (out / name).read_bytes() for name in FILES}


def main(argv: list[str]) -> int:
    files = generate()
    if argv[1:] == ["--check"]:
        stale = [n for n, data in files.items() if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_bytes() != data]
        if stale:
            print(f"stale: {', '.join(stale)} in {OUT_DIR}; run python scripts/gen_seed_stubs.py", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    for name, data in files.items():
        (OUT_DIR / name).write_bytes(data)
    print(f"wrote {', '.join(FILES)} to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
