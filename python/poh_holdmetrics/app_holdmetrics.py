"""The seed's entry point (deprecated): ``python -m poh_holdmetrics.app_holdmetrics {grpc,http,all}``.

It runs our daemon, holdmetricsd, exactly as ``poh-holdmetrics serve`` does (the binary
bundled in the wheel, else on $PATH; this process becomes the daemon), with the seed's
environment variables as its flags (``poh_holdmetrics.config.Settings.to_settings``):
``GRPC_ADDRESS`` -> ``--grpc-addr``, ``HTTP_HOST``/``HTTP_PORT`` -> ``--http-addr``,
``LOG_LEVEL`` -> ``--log-level``, ``GC_INTERVAL`` -> ``--gc-interval``. They win over
``POH_HOLDMETRICS_*`` and the config file, which still set everything else.

holdmetricsd always serves both protocols. ``grpc`` gives the seed's gRPC address to the
daemon and puts its HTTP listener (health, ``/metrics``) on a free loopback port; ``http``
does the converse; ``all`` gives it both. So run one ``all`` where the seed ran a ``grpc``
and an ``http`` process: two daemons cannot share a data dir (its lock refuses the second).
The variables the daemon has no use for are named on stderr when set.

Arguments after ``--`` go to holdmetricsd unchanged (e.g. ``-- --expose`` to listen on a
non-loopback GRPC_ADDRESS); ``--dry-run`` prints the daemon's command line instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._cli_errors import CliError
from ._errors import HoldMetricsError
from ._seed import Settings, deprecated

PROG = "python -m poh_holdmetrics.app_holdmetrics"

# Seed variables holdmetricsd does not take, and why (printed when one is set).
_UNUSED = {
    "collect_interval": "COLLECT_INTERVAL: the daemon has no collect loop (it answers /v1/stats and Stats on demand)",
    "prometheus_port": "PROMETHEUS_PORT: the daemon serves /metrics on its HTTP listener",
    "otlp_endpoint": "OTLP_ENDPOINT: the daemon exports Prometheus /metrics only "
                     "(poh_holdmetrics.exporter.start_otlp_exporter pushes from Python)",
    "mongodb_url": "MONGODB_URL: the daemon keeps its state in its data dir (POH_HOLDMETRICS_DATA_DIR); "
                   "POH_HOLDMETRICS_STORE=mongodb://... keeps it in MongoDB instead",
    "mongodb_db": "MONGODB_DB: see MONGODB_URL",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Run holdmetricsd with the seed's environment variables "
                                "(GRPC_ADDRESS, HTTP_HOST, HTTP_PORT, LOG_LEVEL, GC_INTERVAL). Deprecated: use "
                                "`poh-holdmetrics serve`.")
    p.add_argument("mode", choices=("grpc", "http", "all"),
                   help="which of the seed's addresses the daemon listens on (it serves both protocols; "
                        "the other one on a free loopback port)")
    p.add_argument("--dry-run", action="store_true", help="print the daemon's command line instead of running it")
    p.usage = "%(prog)s [-h] [--dry-run] {grpc,http,all} [-- HOLDMETRICSD_ARG ...]"
    return p


def main(argv: Sequence[str] | None = None) -> int:
    deprecated(f"{PROG} {{grpc,http,all}}", "poh-holdmetrics serve (POH_HOLDMETRICS_* variables, --config)")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:cut])
    args.daemon_args = argv[cut + 1:]
    from ._cli_commands import cmd_serve
    from ._config import _SPEC

    try:
        seed = Settings()
        settings = seed.to_settings(args.mode)
        for k, why in _UNUSED.items():
            if seed.is_set(k):
                sys.stderr.write(f"{PROG}: note: {why}\n")
        # serve's arguments: the seed's values as its options (over POH_HOLDMETRICS_*, config).
        options = {k: getattr(settings, k) for k in _SPEC if settings.source(k) == "argument"}
        ns = argparse.Namespace(config=None, dry_run=args.dry_run, daemon_args=args.daemon_args, **options)
        return cmd_serve(ns, sys.stdout, sys.stderr)
    except (CliError, HoldMetricsError) as e:  # HoldMetricsError includes ConfigError
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
