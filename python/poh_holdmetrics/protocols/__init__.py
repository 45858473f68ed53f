"""The seed's gRPC stubs: ``hold_pb2`` and ``hold_pb2_grpc``, generated from its verbatim
``hold.proto`` (testdata/seed/hold.proto, package ``poh``; scripts/gen_seed_stubs.py with
the pinned grpcio-tools). holdmetricsd serves every RPC of it. Deprecated: clients that want
the daemon's extensions (RecordBatch, CloseHold, TopN) generate from ``proto/hold.proto``;
Python code without a daemon uses ``poh_holdmetrics`` directly.

Needs the optional ``grpc`` extra: ``pip install 'poh-holdmetrics[grpc]'``. As in the seed,
``hold_pb2`` and ``hold_pb2_grpc`` are also registered as top-level modules (the generated
``hold_pb2_grpc`` does ``import hold_pb2``), unless a module of that name is loaded already.
"""

from __future__ import annotations

import sys

from .._seed import deprecated

deprecated("poh_holdmetrics.protocols",
           "proto/hold.proto (the daemon's full protocol, a superset of the seed's) or poh_holdmetrics itself")

try:
    import google.protobuf  # noqa: F401
    import grpc  # noqa: F401
except ImportError as e:
    raise ImportError(f"poh_holdmetrics.protocols needs protobuf and grpcio ({e.name} is not installed): "
                      "pip install 'poh-holdmetrics[grpc]'", name=e.name) from e

from . import hold_pb2

# hold_pb2_grpc imports "hold_pb2" as a top-level module: it must be ours while it loads.
_theirs = sys.modules.get("hold_pb2")
sys.modules["hold_pb2"] = hold_pb2
try:
    from . import hold_pb2_grpc
finally:
    if _theirs is not None:
        sys.modules["hold_pb2"] = _theirs
sys.modules.setdefault("hold_pb2_grpc", hold_pb2_grpc)
del _theirs

__all__ = ["hold_pb2", "hold_pb2_grpc"]
