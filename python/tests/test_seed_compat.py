"""The seed's names (issue 16, part 2), written from its signatures (shared/facts/seed-protocol.md):
poh_holdmetrics.{calculator, data_models, tracker, scheduler, config, protocols,
app_holdmetrics} and the top-level poh_holdmetrics_rust, over our API with our semantics.
Seed-style code runs unchanged against the installed wheel; each name warns once, naming
its modern replacement; the shipped stubs match a fresh generation from the seed's proto."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import poh_holdmetrics as phm
from conftest import PURE, REPO, needs_native

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import poh_holdmetrics_rust as rust
    from poh_holdmetrics import calculator, config, data_models, scheduler, tracker
    from poh_holdmetrics._cli_commands import find_daemon

COMPAT = ("poh_holdmetrics.calculator", "poh_holdmetrics.data_models", "poh_holdmetrics.tracker",
          "poh_holdmetrics.scheduler", "poh_holdmetrics.config", "poh_holdmetrics.protocols",
          "poh_holdmetrics.app_holdmetrics", "poh_holdmetrics_rust")
SEED_ENV = ("GRPC_ADDRESS", "HTTP_HOST", "HTTP_PORT", "LOG_LEVEL", "COLLECT_INTERVAL", "GC_INTERVAL", "MONGODB_URL",
            "MONGODB_URI", "MONGODB_DB", "OTLP_ENDPOINT", "PROMETHEUS_PORT", "POH_DISABLE_RUST")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
S0 = int(T0.timestamp())


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_grpc = pytest.mark.skipif(not (has("grpc") and has("google.protobuf")),
                                reason="grpcio/protobuf not installed (the test extra and mk/python.mk install them)")


def _daemon() -> str | None:
    return find_daemon() or (str(REPO / "bin" / "holdmetricsd") if (REPO / "bin" / "holdmetricsd").is_file() else None)


needs_daemon = pytest.mark.skipif(_daemon() is None, reason="holdmetricsd is neither bundled nor built (make build)")


@pytest.fixture(autouse=True)
def _seed_env(monkeypatch):
    """No seed variable from the outer environment leaks into a test."""
    for k in SEED_ENV:
        monkeypatch.delenv(k, raising=False)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SEED_ENV and not k.startswith("POH_HOLDMETRICS_")}
    if PURE:
        env["POH_HOLDMETRICS_PURE"] = "1"
    env["PATH"] = f"{REPO / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # a daemon when the wheel bundles none
    return {**env, **extra}


def run_py(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=clean_env(**env), timeout=120)


# --- packaging, laziness, deprecation notes --------------------------------------------------

def test_compat_modules_come_from_the_installed_wheel():
    for mod in (rust, calculator, config):
        path = Path(mod.__file__).resolve()
        assert "site-packages" in path.parts and not path.is_relative_to(REPO / "python"), path
    assert (Path(rust.__file__).parent / "py.typed").is_file()
    assert (Path(phm.__file__).parent / "protocols" / "hold_pb2.pyi").is_file()
    wheel = os.environ.get("POH_WHEEL")
    if wheel:
        import zipfile
        names = set(zipfile.ZipFile(wheel).namelist())
        assert {"poh_holdmetrics_rust/__init__.py", "poh_holdmetrics_rust/py.typed", "poh_holdmetrics/tracker.py",
                "poh_holdmetrics/protocols/hold_pb2.py", "poh_holdmetrics/protocols/hold_pb2_grpc.py",
                "poh_holdmetrics/app_holdmetrics.py"} <= names


def test_import_poh_holdmetrics_imports_no_compat_module():
    r = run_py(f"""
        import json, sys, poh_holdmetrics
        print(json.dumps([m for m in {COMPAT!r} + ("poh_holdmetrics._seed",) if m in sys.modules]))
    """)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_each_seed_name_warns_once_naming_the_modern_api():
    modern = {"poh_holdmetrics.calculator": "poh_holdmetrics.calculate_score",
              "poh_holdmetrics.data_models": "poh_holdmetrics.HoldEvent",
              "poh_holdmetrics.tracker": "poh_holdmetrics.Aggregator with poh_holdmetrics.HoldTracker",
              "poh_holdmetrics.scheduler": "poh_holdmetrics.Scheduler(aggregator",
              "poh_holdmetrics.config": "poh_holdmetrics.load_settings()",
              "poh_holdmetrics.protocols": "proto/hold.proto",
              "poh_holdmetrics_rust": "poh_holdmetrics (HoldEvent, calculate_score, Aggregator)"}
    if not (has("grpc") and has("google.protobuf")):
        del modern["poh_holdmetrics.protocols"]  # it needs the grpc extra (tested below)
    r = run_py(f"""
        import json, warnings
        out = {{}}
        for m in {list(modern)!r}:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                exec(f"import {{m}}")
                exec(f"import {{m}}")  # a second import: no second note
            out[m] = [(x.category.__name__, str(x.message), x.filename) for x in w]
        print(json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for m, new in modern.items():
        [(cat, msg, filename)] = [x for x in got[m] if x[0] == "DeprecationWarning"]
        assert m.split(".")[-1] in msg and f"use {new}" in msg and "Migrating from poh_holdmetrics_rust" in msg, msg
        assert filename == "<string>", f"{m}: the note points at {filename}, not at the importing line"


def test_the_note_reaches_a_script_under_the_default_filters():
    # Python shows a DeprecationWarning by default only when it is attributed to __main__:
    # the note must point at the user's line, through the lazy top-level name too.
    r = run_py("""
        from poh_holdmetrics import AsyncTracker
        import poh_holdmetrics_rust
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("DeprecationWarning") == 2, r.stderr
    assert '<string>:2: DeprecationWarning: poh_holdmetrics.tracker.AsyncTracker' in r.stderr


def test_top_level_async_tracker_is_the_seed_one_and_not_in_all():
    r = run_py("""
        import warnings
        warnings.simplefilter("error", DeprecationWarning)
        import poh_holdmetrics
        try:
            poh_holdmetrics.AsyncTracker
        except DeprecationWarning as e:
            print("warned:", e)
    """)
    assert r.returncode == 0, r.stderr
    assert "warned: poh_holdmetrics.tracker.AsyncTracker" in r.stdout
    assert phm.AsyncTracker is tracker.AsyncTracker
    assert "AsyncTracker" not in phm.__all__


def test_compat_module_names_do_not_shadow_the_package_api():
    # The submodules become package attributes; none of them is also a name of the API.
    for name in ("calculator", "data_models", "tracker", "scheduler", "config", "protocols", "app_holdmetrics"):
        assert name not in phm.__all__ and name not in phm._LAZY
    assert phm.Settings is not config.Settings and phm.Scheduler is not scheduler.Scheduler
    assert phm.Scheduler is scheduler.Scheduler.__mro__[1]


# --- seed-style user code, unchanged ---------------------------------------------------------

SEED_SCRIPT = """
import asyncio
from datetime import datetime, timedelta, timezone

from poh_holdmetrics import AsyncTracker, Scheduler, __version__, calculate_score
from poh_holdmetrics.calculator import calculate_score as calc
from poh_holdmetrics.config import settings
from poh_holdmetrics.data_models import HoldEvent, HoldStat
import poh_holdmetrics.scheduler
import poh_holdmetrics_rust as rs
from poh_holdmetrics.protocols import hold_pb2, hold_pb2_grpc

t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
events = [HoldEvent(token_id="T", holder_id="alice", start=t0, end=t0 + timedelta(seconds=10), weight=2.0),
          HoldEvent("T", "bob", t0, t0 + timedelta(seconds=5), 1.0)]
print("score", calculate_score(events), calc(events))
print("stat", HoldStat(holder_id="alice", weighted_score=20.0))
print("settings", settings.grpc_address, settings.collect_interval, settings.gc_interval)

async def main():
    tracker = AsyncTracker()
    for ev in events:
        await tracker.record(ev)
    await tracker.record_start("T", "carol", weight=3.0)
    await tracker.record_stop("T", "carol")
    try:
        await tracker.record_stop("T", "carol")
    except RuntimeError as e:
        print("error", e)
    got = asyncio.Event()
    seen = []

    def on_collect(stats):
        seen.append(stats)
        got.set()

    sched = poh_holdmetrics.scheduler.Scheduler(tracker, on_collect=on_collect)
    await sched.start()
    await got.wait()
    await sched.stop()
    print("collected", [h for h, _ in seen[0]][:2])
    agg = rs.PyAggregator()
    await agg.record(rs.PyHoldEvent("T", "dave", 0, 100, None))
    print("rust", rs.calculate_score([rs.PyHoldEvent("T", "x", 0, 4, 0.5)]), agg.snapshot())
    print("snapshot", tracker.snapshot()[:2])

asyncio.run(main())
print("msg", hold_pb2.HoldMsg(token_id="T", holder_id="alice", weight=1.0).token_id,
      hasattr(hold_pb2_grpc, "HoldMetricsStub"))
"""


@needs_native
@needs_grpc
def test_seed_script_runs_unchanged():
    r = run_py(SEED_SCRIPT, COLLECT_INTERVAL="0.01")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines["score"] == "25.0 25.0"
    assert lines["stat"] == "HoldStat(holder_id='alice', weighted_score=20.0)"
    assert lines["settings"] == "127.0.0.1:60051 0.01 600.0"
    assert lines["error"] == "No pending start for (T, carol)"
    assert lines["collected"] == "['alice', 'bob']"
    assert lines["rust"] == "2.0 [('dave', 100.0)]"
    assert lines["snapshot"] == "[('alice', 20.0), ('bob', 5.0)]"
    assert lines["msg"] == "T True"


def test_seed_script_without_the_native_library_scores_in_python():
    r = run_py("""
        from datetime import datetime, timezone
        from poh_holdmetrics.calculator import calculate_score
        from poh_holdmetrics.data_models import HoldEvent
        import poh_holdmetrics_rust as rs
        t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
        print(calculate_score([HoldEvent("T", "a", t0, t0.replace(minute=1), 2.0)]),
              rs.calculate_score([rs.PyHoldEvent("T", "a", 0, 10, None)]))
        import poh_holdmetrics
        print(poh_holdmetrics.backend)
    """, POH_HOLDMETRICS_PURE="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["120.0", "10.0", "python"]


# --- data_models, calculator -----------------------------------------------------------------

def test_data_models_hold_event_is_ours_by_keyword_and_position():
    assert data_models.HoldEvent is phm.HoldEvent
    kw = data_models.HoldEvent(token_id="T", holder_id="a", start=T0, end=T0 + timedelta(seconds=9), weight=2.0)
    pos = data_models.HoldEvent("T", "a", T0, T0 + timedelta(seconds=9), 2.0)
    naive = data_models.HoldEvent("T", "a", T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(seconds=9), 2)
    assert kw == pos and (kw.start, kw.end, kw.weight) == (S0, S0 + 9, 2.0)
    assert (naive.start, naive.end) == (S0, S0 + 9)  # naive = UTC
    assert data_models.HoldEvent("T", "a", T0).end is None and data_models.HoldEvent("T", "a", T0).weight == 1.0


def test_data_models_bad_event_is_a_value_error_naming_the_field():
    with pytest.raises(ValueError, match="end .* is before start") as e:
        data_models.HoldEvent("T", "a", T0, T0 - timedelta(seconds=1))
    assert isinstance(e.value, phm.InvalidEventError) and e.value.field == "end"
    with pytest.raises(phm.InvalidEventError, match="holder_id") as e:
        data_models.HoldEvent("T", "", T0)
    assert e.value.reason == "empty"


def test_data_models_hold_stat_is_the_seed_shape():
    s = data_models.HoldStat(holder_id="alice", weighted_score=1.5)
    assert (s.holder_id, s.weighted_score) == ("alice", 1.5) and s == data_models.HoldStat("alice", 1.5)
    with pytest.raises(AttributeError):
        s.weighted_score = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        data_models.HoldStat("alice")  # type: ignore[call-arg]


@pytest.mark.parametrize("disable", ["", "1", "true"])
def test_calculator_matches_ours_on_both_paths(monkeypatch, disable):
    if disable:
        monkeypatch.setenv("POH_DISABLE_RUST", disable)
    events = [phm.HoldEvent("T", "a", S0, S0 + 10, 0.1), phm.HoldEvent("T", "b", S0, S0 + 7, 1 / 3),
              ("T", "c", S0, S0 + 3)]
    got = calculator.calculate_score(events)
    assert isinstance(got, float)
    assert got == phm.calculate_score(events)  # the same bits on either path


def test_calculator_disable_rust_takes_the_python_path(monkeypatch):
    from poh_holdmetrics import _score

    def boom(*a, **k):
        raise AssertionError("POH_DISABLE_RUST=1 must not reach the native path")

    monkeypatch.setattr(_score, "calculate_score", boom)
    monkeypatch.setenv("POH_DISABLE_RUST", "1")
    assert calculator.calculate_score([phm.HoldEvent("T", "a", 0, 4, 2.5)]) == 10.0
    monkeypatch.setenv("POH_DISABLE_RUST", "0")  # falsy: the normal path
    with pytest.raises(AssertionError):
        calculator.calculate_score([phm.HoldEvent("T", "a", 0, 4, 2.5)])


@pytest.mark.parametrize("disable", ["", "1"])
def test_calculator_clamps_to_now_and_names_bad_events(monkeypatch, disable):
    if disable:
        monkeypatch.setenv("POH_DISABLE_RUST", disable)
    before = int(time.time())
    far = 253402300799
    s = calculator.calculate_score([phm.HoldEvent("T", "a", before - 100, far), phm.HoldEvent("T", "b", far - 1, far)])
    after = int(time.time())
    assert 100 <= s <= after - before + 100  # a future end counts up to now; a future start counts 0
    with pytest.raises(phm.InvalidEventError, match="event 1") as e:
        calculator.calculate_score([phm.HoldEvent("T", "a", 0, 1), {"token_id": "T", "holder_id": "b", "start": -1}])
    assert e.value.index == 1 and e.value.field == "start"
    assert calculator.calculate_score([]) == 0.0


# --- tracker, scheduler ----------------------------------------------------------------------

@needs_native
async def test_async_tracker_seed_methods_and_shapes():
    async with tracker.AsyncTracker() as tr:
        await tr.record(data_models.HoldEvent("T", "alice", S0, S0 + 10, 2.0))
        await tr.record(data_models.HoldEvent("T", "bob", S0, S0 + 20, 1.0))
        await tr.record_start("T", "carol", weight=5.0)
        snap = tr.snapshot()
        assert all(type(h) is str and type(s) is float for h, s in snap)
        scores = dict(snap)
        assert scores.keys() == {"alice", "bob", "carol"} and scores["alice"] == scores["bob"] == 20.0
        assert snap == sorted(snap, key=lambda r: (-r[1], r[0]))  # best first, then by holder
        with pytest.raises(tracker.HoldAlreadyOpenError):
            await tr.record_start("T", "carol")  # ours: a second start is an error (the seed replaced the first)
        await tr.record_stop("T", "carol")
        with pytest.raises(RuntimeError, match=re.escape("No pending start for (T, carol)")) as e:
            await tr.record_stop("T", "carol")
        assert isinstance(e.value, phm.NoOpenHoldError)
        with pytest.raises(RuntimeError, match=re.escape("No pending start for (T, nobody)")):
            await tr.record_stop("T", "nobody")
        with pytest.raises(phm.InvalidEventError, match="weight"):
            await tr.record_start("T", "dave", weight=-1.0)
        assert isinstance(tr.aggregator, phm.Aggregator) and tr.gc() == 0
    assert tr.aggregator.closed


@needs_native
async def test_async_tracker_shares_an_aggregator_it_does_not_close():
    with phm.Aggregator() as agg:
        tr = tracker.AsyncTracker(aggregator=agg)
        await tr.record(phm.HoldEvent("T", "a", 0, 10))
        tr.close()
        assert not agg.closed and [r.score for r in agg.snapshot()] == [10.0]


def test_async_tracker_needs_the_native_library():
    if not PURE:
        pytest.skip("the native library is available: AsyncTracker works (tested above)")
    with pytest.raises(phm.NativeLibraryError):
        tracker.AsyncTracker()


@needs_native
async def test_seed_scheduler_hands_the_tracker_snapshot_to_on_collect(monkeypatch):
    monkeypatch.setenv("COLLECT_INTERVAL", "0.01")
    tr = tracker.AsyncTracker()
    await tr.record(phm.HoldEvent("T", "alice", 0, 10, 2.0))
    got: asyncio.Queue = asyncio.Queue()

    async def on_collect(stats):  # a coroutine function, as the seed allowed
        await got.put(stats)

    s = scheduler.Scheduler(tr, on_collect=on_collect)
    assert (s.collect_interval, s.gc_interval, s.tracker) == (0.01, 600.0, tr)
    await s.start()
    try:
        assert await got.get() == [("alice", 20.0)]
    finally:
        await s.stop()
    assert not s.running
    tr.close()


def test_seed_scheduler_intervals_from_the_seed_settings(monkeypatch):
    class Snap:  # any tracker with snapshot(); without gc() the gc loop is off
        def snapshot(self):
            return []

    s = scheduler.Scheduler(Snap())
    assert (s.collect_interval, s.gc_interval) == (10.0, None)
    monkeypatch.setenv("COLLECT_INTERVAL", "0")  # 0 turns the loop off
    monkeypatch.setenv("GC_INTERVAL", "1m")
    s = scheduler.Scheduler(Snap(), collect_interval=None, gc_interval=None)
    assert s.collect_interval is None
    s = scheduler.Scheduler(type("T", (Snap,), {"gc": lambda self: 0})())
    assert s.gc_interval == 60.0
    monkeypatch.setenv("COLLECT_INTERVAL", "soon")
    with pytest.raises(phm.ConfigError, match="COLLECT_INTERVAL"):
        scheduler.Scheduler(Snap())


def test_modern_scheduler_given_the_seed_argument_order_says_where_to_go():
    with pytest.raises(TypeError, match=r"poh_holdmetrics\.scheduler\.Scheduler"):
        phm.Scheduler(object(), lambda stats: None)  # type: ignore[arg-type]


# --- config ----------------------------------------------------------------------------------

def test_config_defaults_and_the_module_instance():
    s = config.Settings()
    assert s.as_dict() == {"grpc_address": "127.0.0.1:60051", "http_host": "127.0.0.1", "http_port": 9100,
                           "log_level": "INFO", "collect_interval": 10.0, "gc_interval": 600.0,
                           "mongodb_url": "mongodb://localhost:27017", "mongodb_db": "holdmetrics",
                           "otlp_endpoint": "http://127.0.0.1:4318/v1/metrics", "prometheus_port": 9464}
    assert isinstance(config.settings, config.Settings)


def test_config_reads_the_seed_environment_names(monkeypatch):
    for k, v in {"GRPC_ADDRESS": "0.0.0.0:50051", "HTTP_HOST": "::1", "HTTP_PORT": "8000", "LOG_LEVEL": "warning",
                 "COLLECT_INTERVAL": "5", "GC_INTERVAL": "2m", "MONGODB_URI": "mongodb://db:27017",
                 "MONGODB_DB": "holds", "OTLP_ENDPOINT": "http://otel:4318/v1/metrics", "PROMETHEUS_PORT": "9000"}.items():
        monkeypatch.setenv(k, v)
    s = config.Settings()
    assert (s.grpc_address, s.http_host, s.http_port, s.log_level) == ("0.0.0.0:50051", "::1", 8000, "WARNING")
    assert (s.collect_interval, s.gc_interval, s.mongodb_url, s.mongodb_db) == (5.0, 120.0, "mongodb://db:27017", "holds")
    assert (s.otlp_endpoint, s.prometheus_port) == ("http://otel:4318/v1/metrics", 9000)
    monkeypatch.setenv("MONGODB_URL", "mongodb://first:27017")  # MONGODB_URL wins over MONGODB_URI
    assert config.Settings().mongodb_url == "mongodb://first:27017"
    assert config.Settings(http_port=1234).http_port == 1234  # arguments win over the environment
    modern = s.to_settings()
    assert (modern.grpc_addr, modern.http_addr, modern.log_level) == ("0.0.0.0:50051", "[::1]:8000", "warn")
    assert (modern.collect_interval, modern.gc_interval, modern.metrics_addr) == (5.0, 120.0, "127.0.0.1:9000")
    assert modern.otlp_endpoint == "http://otel:4318/v1/metrics" and modern.source("grpc_addr") == "argument"


def test_config_unset_values_leave_ours_alone(monkeypatch):
    monkeypatch.setenv("POH_HOLDMETRICS_GRPC_ADDR", "127.0.0.1:7000")
    monkeypatch.setenv("HTTP_PORT", "")  # empty = unset
    modern = config.Settings().to_settings()
    assert modern.grpc_addr == "127.0.0.1:7000" and modern.source("grpc_addr") == "env POH_HOLDMETRICS_GRPC_ADDR"
    assert modern.source("http_addr") == "default"
    assert config.Settings().to_settings("grpc").http_addr == "127.0.0.1:0"
    assert config.Settings().to_settings("http").grpc_addr == "127.0.0.1:0"
    with pytest.raises(ValueError, match="mode 'both'"):
        config.Settings().to_settings("both")


@pytest.mark.parametrize("var,value,message", [
    ("HTTP_PORT", "x", "env HTTP_PORT: HTTP_PORT: 'x' is not an integer"),
    ("HTTP_PORT", "70000", "'70000' is not a port"),
    ("GRPC_ADDRESS", "50051", "env GRPC_ADDRESS: GRPC_ADDRESS: '50051' is not a host:port address"),
    ("LOG_LEVEL", "loud", "'loud' is not a log level"),
    ("GC_INTERVAL", "-5", "GC_INTERVAL: '-5' must be a finite duration >= 0"),
    ("OTLP_ENDPOINT", "otel:4318", "not an http:// or https:// URL"),
])
def test_config_bad_value_names_the_variable(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(phm.ConfigError) as e:
        config.Settings()
    assert message in str(e.value) and e.value.key == var and e.value.source == f"env {var}"


def test_config_bad_arguments():
    with pytest.raises(phm.ConfigError, match="argument: grpc_adress: unknown setting"):
        config.Settings(grpc_adress="127.0.0.1:1")
    s = config.Settings()
    s.http_port = "8080"  # type: ignore[assignment]
    assert s.http_port == 8080 and s.is_set("http_port")
    with pytest.raises(phm.ConfigError, match="http_port"):
        s.http_port = -1
    with pytest.raises(AttributeError, match="no setting 'port'"):
        s.port = 1  # type: ignore[attr-defined]


# --- poh_holdmetrics_rust --------------------------------------------------------------------

def test_py_hold_event_five_positional_required():
    ev = rust.PyHoldEvent("T", "alice", 0, 10, None)
    assert (ev.token_id, ev.holder_id, ev.start, ev.end, ev.weight) == ("T", "alice", 0, 10, 1.0)
    assert rust.PyHoldEvent("T", "a", 5, None, 2.0).end is None
    assert rust.PyHoldEvent(token_id="T", holder_id="a", start=0, end=1, weight=3).weight == 3.0
    with pytest.raises(TypeError):
        rust.PyHoldEvent("T", "alice", 0, 10)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        ev.weight = 2.0  # type: ignore[misc]
    with pytest.raises(phm.InvalidEventError, match="weight"):
        rust.PyHoldEvent("T", "alice", 0, 10, float("nan"))
    assert ev == rust.PyHoldEvent("T", "alice", 0, 10, 1.0) and ev.to_event() == phm.HoldEvent("T", "alice", 0, 10)
    assert repr(ev) == "PyHoldEvent('T', 'alice', 0, 10, 1.0)"


def test_rust_calculate_score_of_a_list():
    evs = [rust.PyHoldEvent("T", "a", 0, 10, 2.0), rust.PyHoldEvent("T", "b", 0, 5, None)]
    assert rust.calculate_score(evs) == 25.0 and isinstance(rust.calculate_score([]), float)
    with pytest.raises(phm.InvalidEventError, match="event 1"):
        rust.calculate_score([evs[0], object()])


@needs_native
async def test_py_aggregator_record_is_awaitable_and_snapshot_is_tuples():
    agg = rust.PyAggregator()
    await agg.record(rust.PyHoldEvent("T", "a", 0, 10, 2.0))
    await asyncio.gather(agg.record(rust.PyHoldEvent("T", "b", 0, 30, None)),
                         agg.record(rust.PyHoldEvent("U", "a", 0, 1, 1.0)))
    agg.record(rust.PyHoldEvent("T", "c", 0, 3, None))  # recorded when called: awaiting is optional
    assert agg.snapshot() == [("b", 30.0), ("a", 21.0), ("c", 3.0)]
    assert isinstance(agg.aggregator, phm.Aggregator)
    agg.close()
    with pytest.raises(phm.ClosedError):
        agg.snapshot()


# --- protocols -------------------------------------------------------------------------------

def _stubs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from poh_holdmetrics.protocols import hold_pb2, hold_pb2_grpc
    return hold_pb2, hold_pb2_grpc


@needs_grpc
def test_protocols_are_the_seed_proto():
    hold_pb2, hold_pb2_grpc = _stubs()
    d = hold_pb2.DESCRIPTOR
    assert (d.name, d.package) == ("hold.proto", "poh")
    assert [f.name for f in hold_pb2.HoldMsg.DESCRIPTOR.fields] == ["token_id", "holder_id", "start", "end", "weight"]
    assert [f.name for f in hold_pb2.HoldStat.DESCRIPTOR.fields] == ["holder_id", "total_seconds", "weighted_score",
                                                                     "updated_at"]
    methods = {f"/{s.full_name}/{m.name}": (m.input_type.full_name, m.output_type.full_name,
                                            m.client_streaming, m.server_streaming)
               for s in d.services_by_name.values() for m in s.methods}
    empty = "google.protobuf.Empty"
    assert methods == {
        "/poh.HoldMetrics/Broadcast": ("poh.HoldMsg", "poh.HoldAck", True, True),
        "/poh.HoldMetrics/Record": ("poh.HoldMsg", "poh.HoldAck", False, False),
        "/poh.HoldMetrics/Stats": (empty, "poh.HoldStat", False, True),
        "/poh.HoldMetricsQuery/GetSnapshot": (empty, "poh.HoldStat", False, True),
        "/poh.HoldMetricsQuery/HealthCheck": (empty, "poh.HoldAck", False, False),
    }
    assert {"HoldMetricsStub", "HoldMetricsQueryStub", "HoldMetricsServicer", "add_HoldMetricsServicer_to_server"} \
        <= set(dir(hold_pb2_grpc))
    # the seed's top-level aliases
    assert sys.modules["hold_pb2"] is hold_pb2 and sys.modules["hold_pb2_grpc"] is hold_pb2_grpc


def test_protocols_without_grpc_names_the_extra():
    r = run_py("""
        import sys
        sys.modules["grpc"] = None  # as if grpcio were not installed
        try:
            import poh_holdmetrics.protocols
        except ImportError as e:
            print(e)
    """)
    assert r.returncode == 0, r.stderr
    assert "pip install 'poh-holdmetrics[grpc]'" in r.stdout and "grpc is not installed" in r.stdout


def test_grpc_extra_in_pyproject():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^grpc = \["grpcio>=1\.85\.1", "protobuf>=7\.35\.1,<8"\]', text, re.M), "the grpc extra"


def test_stubs_match_a_fresh_generation_from_the_seed_proto():
    pytest.importorskip("grpc_tools", reason="grpcio-tools not installed (the test extra pins grpcio-tools==1.85.1)")
    spec = importlib.util.spec_from_file_location("gen_seed_stubs", REPO / "scripts" / "gen_seed_stubs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    daemon_mk = (REPO / "mk" / "daemon.mk").read_text(encoding="utf-8")
    assert f"grpcio-tools=={gen.GRPCIO_TOOLS_VERSION}" in daemon_mk, "scripts/gen_seed_stubs.py's pin != mk/daemon.mk's"
    try:
        fresh = gen.generate()
    except SystemExit as e:  # e.g. another grpcio-tools version installed
        pytest.fail(str(e))
    installed = Path(phm.__file__).parent / "protocols"
    for name, data in fresh.items():
        committed = REPO / "python" / "poh_holdmetrics" / "protocols" / name
        assert committed.read_bytes() == data, f"{committed} is stale: run python scripts/gen_seed_stubs.py"
        assert (installed / name).read_bytes() == data, f"the installed {name} differs from the committed one"


# --- app_holdmetrics: the seed's entry point starts holdmetricsd ------------------------------

def app(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "poh_holdmetrics.app_holdmetrics", *args], capture_output=True,
                          text=True, env=clean_env(**env), timeout=60)


@needs_daemon
def test_app_maps_the_seed_environment_to_daemon_flags():
    r = app("grpc", "--dry-run", GRPC_ADDRESS="127.0.0.1:50051", LOG_LEVEL="WARNING", GC_INTERVAL="30",
            PROMETHEUS_PORT="9091", COLLECT_INTERVAL="5")
    assert r.returncode == 0, r.stderr
    argv = r.stdout.split()
    assert argv[0].removesuffix(".exe").endswith("holdmetricsd")
    assert argv[1:] == ["--grpc-addr=127.0.0.1:50051", "--http-addr=127.0.0.1:0", "--gc-interval=30s",
                        "--log-level=warn"]
    assert "PROMETHEUS_PORT: the daemon serves /metrics on its HTTP listener" in r.stderr
    assert "COLLECT_INTERVAL" in r.stderr and "DeprecationWarning" in r.stderr and "poh-holdmetrics serve" in r.stderr
    r = app("http", "--dry-run", "--", "--in-memory", HTTP_HOST="::1", HTTP_PORT="8080",
            POH_HOLDMETRICS_LOG_LEVEL="debug")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1:] == ["--grpc-addr=127.0.0.1:0", "--http-addr=[::1]:8080", "--log-level=debug",
                                    "--in-memory"]
    r = app("all", "--dry-run", HTTP_PORT="8081")
    assert r.stdout.split()[1:] == ["--http-addr=127.0.0.1:8081"], r.stderr


def test_app_bad_input_is_a_clear_error():
    r = app("all", HTTP_PORT="eighty")
    assert r.returncode == 1 and "error: env HTTP_PORT: HTTP_PORT: 'eighty' is not an integer" in r.stderr
    r = app("both")
    assert r.returncode == 2 and "invalid choice: 'both'" in r.stderr
    r = app()
    assert r.returncode == 2 and "required: mode" in r.stderr


class Running:
    """The app's process (holdmetricsd once it exec'd) and where its log says it listens."""

    def __init__(self, mode: str, tmp: Path, **env: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "poh_holdmetrics.app_holdmetrics", mode],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=clean_env(POH_HOLDMETRICS_DATA_DIR=str(tmp / "data"), **env))
        lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []

        def pump() -> None:
            assert self.proc.stderr
            for line in self.proc.stderr:
                self.stderr.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.grpc = self.http = ""
        while True:
            try:
                line = lines.get(timeout=60)  # a deadline for a hung start, not a timing assertion
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("{") and json.loads(line).get("msg") == "holdmetricsd listening":
                rec = json.loads(line)
                self.grpc, self.http = rec["grpc"], rec["http"]
                break
        assert self.grpc, "the daemon never said where it listens:\n" + "".join(self.stderr)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the app exec'd the daemon: the signal reaches it
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def healthz(http: str) -> int:
    with urllib.request.urlopen(http + "/healthz", timeout=10) as resp:
        return resp.status


unix_only = pytest.mark.skipif(sys.platform == "win32", reason="Unix only: stops the daemon with SIGTERM")


@needs_daemon
@needs_grpc
@unix_only
def test_app_all_starts_the_daemon_with_the_seed_addresses(tmp_path):
    import grpc
    from google.protobuf import empty_pb2, timestamp_pb2
    hold_pb2, hold_pb2_grpc = _stubs()
    d = Running("all", tmp_path, GRPC_ADDRESS="127.0.0.1:0", HTTP_HOST="127.0.0.1", HTTP_PORT="0", LOG_LEVEL="INFO")
    try:
        assert d.grpc.startswith("127.0.0.1:") and d.http.startswith("http://127.0.0.1:")
        assert healthz(d.http) == 200
        with grpc.insecure_channel(d.grpc) as ch:
            query = hold_pb2_grpc.HoldMetricsQueryStub(ch)
            ack = query.HealthCheck(empty_pb2.Empty(), timeout=10)
            assert ack.ok and not ack.error
            rec = hold_pb2_grpc.HoldMetricsStub(ch).Record(hold_pb2.HoldMsg(
                token_id="T", holder_id="alice", start=timestamp_pb2.Timestamp(seconds=S0),
                end=timestamp_pb2.Timestamp(seconds=S0 + 10), weight=2.0), timeout=10)
            assert rec.ok
            stats = list(query.GetSnapshot(empty_pb2.Empty(), timeout=10))
            assert [(s.holder_id, s.weighted_score, s.total_seconds) for s in stats] == [("alice", 20.0, 10)]
    finally:
        assert d.stop() == 0, "".join(d.stderr)


@needs_daemon
@needs_grpc
@unix_only
def test_app_grpc_mode_answers_health_check(tmp_path):
    import grpc
    from google.protobuf import empty_pb2
    hold_pb2, hold_pb2_grpc = _stubs()
    d = Running("grpc", tmp_path, GRPC_ADDRESS="127.0.0.1:0", HTTP_PORT="9")  # HTTP_PORT: not this mode's
    try:
        with grpc.insecure_channel(d.grpc) as ch:
            assert hold_pb2_grpc.HoldMetricsQueryStub(ch).HealthCheck(empty_pb2.Empty(), timeout=10).ok
        assert d.http.startswith("http://127.0.0.1:") and not d.http.endswith(":9")
    finally:
        assert d.stop() == 0, "".join(d.stderr)


@needs_daemon
@unix_only
def test_app_http_mode_answers_healthz(tmp_path):
    d = Running("http", tmp_path, HTTP_HOST="127.0.0.1", HTTP_PORT="0", GRPC_ADDRESS="127.0.0.1:9")
    try:
        assert healthz(d.http) == 200 and not d.grpc.endswith(":9")
    finally:
        assert d.stop() == 0, "".join(d.stderr)
