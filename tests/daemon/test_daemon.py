"""holdmetricsd as a process: a grpcio client generated from the proto, HTTP,
kill -9 durability, SIGTERM drain, health, reflection, auth, lock, config."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, timestamp_pb2

from conftest import BINARY, wait_until


def ts(s: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=s)


def http(method: str, url: str, body: object | None = None, token: str = "") -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw.decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def stats(d) -> dict[str, dict]:
    code, rows = http("GET", d.http + "/v1/stats")
    assert code == 200
    return {r["holder_id"]: r for r in rows}


def test_grpc_client_every_rpc(daemon_factory, pb):
    hold_pb2, hold_grpc = pb
    d = daemon_factory().start()
    with grpc.insecure_channel(d.grpc) as ch:
        hm, q = hold_grpc.HoldMetricsStub(ch), hold_grpc.HoldMetricsQueryStub(ch)
        assert hm.Record(hold_pb2.HoldMsg(token_id="T", holder_id="alice", start=ts(0), end=ts(10), weight=2.0), timeout=10).ok
        with pytest.raises(grpc.RpcError) as bad:
            hm.Record(hold_pb2.HoldMsg(token_id="T", holder_id="x", start=ts(10), end=ts(5)), timeout=10)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "end 5: is before start 10" in bad.value.details()

        msgs = [hold_pb2.HoldMsg(token_id="T", holder_id="bob", start=ts(50)),
                hold_pb2.HoldMsg(token_id="T", holder_id="bad", start=ts(1), weight=-1.0),
                hold_pb2.HoldMsg(token_id="U", holder_id="carol", start=ts(1), end=ts(2), weight=0.0)]
        acks = list(hm.Broadcast(iter(msgs), timeout=10))
        assert [a.ok for a in acks] == [True, False, True]
        assert "weight -1" in acks[1].error

        batch = hold_pb2.HoldBatch(events=[hold_pb2.HoldMsg(token_id="U", holder_id=f"b{i}", start=ts(i), end=ts(50))
                                           for i in range(10)])
        ack = hm.RecordBatch(batch, timeout=10)
        assert ack.ok and ack.accepted == 10
        closed = hm.CloseHold(hold_pb2.CloseRequest(token_id="T", holder_id="bob", at=ts(150)), timeout=10)
        assert closed.closed == 1

        snap = q.Ranking(empty_pb2.Empty(), timeout=10)
        assert snap.stats[0].holder_id == "bob" and snap.stats[0].weighted_score == 100
        streamed = list(hm.Stats(empty_pb2.Empty(), timeout=10))  # the same rows, in no particular order
        assert sorted(s.SerializeToString(deterministic=True) for s in streamed) == \
            sorted(s.SerializeToString(deterministic=True) for s in snap.stats)
        assert [s.holder_id for s in q.GetSnapshot(empty_pb2.Empty(), timeout=10)] == [s.holder_id for s in snap.stats]
        top = q.TopN(hold_pb2.TopRequest(n=2, token_id="U"), timeout=10)
        assert [s.holder_id for s in top.stats] == ["b0", "b1"]
        page = q.TopN(hold_pb2.TopRequest(n=2, offset=1, token_id="U"), timeout=10)
        assert [s.holder_id for s in page.stats] == ["b1", "b2"]
        assert q.HealthCheck(empty_pb2.Empty(), timeout=10).ok
        assert q.Health(empty_pb2.Empty(), timeout=10).status == "SERVING"

    # HTTP on the same aggregator.
    code, body = http("POST", d.http + "/v1/holds", [{"token_id": "T", "holder_id": "dave", "start": "1970-01-01T00:00:00Z", "end": 1000}])
    assert (code, body) == (200, {"accepted": 1})
    code, body = http("POST", d.http + "/hold", {"token_id": "T", "holder_id": "erin", "start": 5, "end": 1})
    assert code == 400 and body["field"] == "end" and body["index"] == 0
    rows = stats(d)
    assert rows["dave"]["score"] == 1000 and rows["alice"]["score"] == 20
    code, top = http("GET", d.http + "/v1/top?n=1&token=T")
    assert code == 200 and top[0]["holder_id"] == "dave"
    code, metrics = http("GET", d.http + "/metrics")
    assert code == 200 and 'poh_hold_events_total{result="accepted"}' in metrics


SEED_CLIENT = """
import sys
import grpc
from google.protobuf import empty_pb2, timestamp_pb2
import seedhold_pb2 as pb, seedhold_pb2_grpc as pbg
ts = lambda s: timestamp_pb2.Timestamp(seconds=s)
with grpc.insecure_channel(sys.argv[1]) as ch:
    hm, q = pbg.HoldMetricsStub(ch), pbg.HoldMetricsQueryStub(ch)
    # every RPC of the seed's file, as its clients call them
    assert hm.Record(pb.HoldMsg(token_id="T", holder_id="s1", start=ts(0), end=ts(10), weight=3.0), timeout=10).ok
    acks = list(hm.Broadcast(iter([pb.HoldMsg(token_id="T", holder_id="s2", start=ts(0), end=ts(4)),
                                  pb.HoldMsg(token_id="", holder_id="s3", start=ts(0))]), timeout=10))
    assert [a.ok for a in acks] == [True, False], acks
    assert "event 1: token_id" in acks[1].error, acks[1]
    rows = {s.holder_id: s for s in hm.Stats(empty_pb2.Empty(), timeout=10)}
    assert rows["s1"].weighted_score == 30 and rows["s1"].total_seconds == 10, rows
    assert rows["s2"].weighted_score == 4, rows  # an unset weight means 1.0
    snap = list(q.GetSnapshot(empty_pb2.Empty(), timeout=10))  # stream HoldStat
    assert [s.holder_id for s in snap] == ["s1", "s2"], snap
    assert snap[0].weighted_score == 30 and snap[0].updated_at.seconds > 0, snap
    health = q.HealthCheck(empty_pb2.Empty(), timeout=10)  # HoldAck
    assert health.ok and health.error == "", health
print("seed client ok")
"""


def test_seed_proto_client_unchanged(daemon_factory, seed_stubs):
    d = daemon_factory().start()
    p = subprocess.run([sys.executable, "-c", SEED_CLIENT, d.grpc], cwd=seed_stubs,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "seed client ok" in p.stdout, p.stderr


def test_health_and_reflection(daemon_factory):
    d = daemon_factory().start()
    with grpc.insecure_channel(d.grpc) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
        # HealthCheckRequest{} -> HealthCheckResponse{status: SERVING (1)}
        assert check(b"", timeout=10) == b"\x08\x01"
        named = b"\x0a" + bytes([len(b"poh.HoldMetrics")]) + b"poh.HoldMetrics"
        assert check(named, timeout=10) == b"\x08\x01"
        refl = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=None, response_deserializer=None)
        # ServerReflectionRequest{list_services: ""} (field 7)
        resp = b"".join(refl(iter([b"\x3a\x00"]), timeout=10))
        for name in (b"poh.HoldMetrics", b"poh.HoldMetricsQuery", b"grpc.health.v1.Health"):
            assert name in resp
    assert http("GET", d.http + "/healthz")[0] == 200
    assert http("GET", d.http + "/readyz")[0] == 200


def _unary_recorder(pb, addr: str, acked: list[str], stop: threading.Event) -> threading.Thread:
    """Records distinct holders u0, u1, ... one unary Record each until stop or the daemon
    goes away; appends each acknowledged one."""
    hold_pb2, hold_grpc = pb

    def run() -> None:
        try:
            with grpc.insecure_channel(addr) as ch:
                hm = hold_grpc.HoldMetricsStub(ch)
                for i in range(100000):
                    if stop.is_set():
                        return
                    hm.Record(hold_pb2.HoldMsg(token_id="T", holder_id=f"u{i}", start=ts(1)), timeout=10)
                    acked.append(f"u{i}")
        except grpc.RpcError:
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _streamer(pb, addr: str, prefix: str, acked: list[str], stop: threading.Event) -> threading.Thread:
    """Broadcasts distinct holders until stop; appends each acknowledged one."""
    hold_pb2, hold_grpc = pb

    def run() -> None:
        sent: "queue.Queue[str]" = queue.Queue()

        def gen():
            i = 0
            while not stop.is_set():
                h = f"{prefix}{i}"
                sent.put(h)
                yield hold_pb2.HoldMsg(token_id="T", holder_id=h, start=ts(i), end=ts(i + 10))
                i += 1
                if i % 64 == 0:
                    time.sleep(0.001)

        try:
            with grpc.insecure_channel(addr) as ch:
                for ack in hold_grpc.HoldMetricsStub(ch).Broadcast(gen(), timeout=60):
                    h = sent.get_nowait()  # acks come in message order
                    if ack.ok:
                        acked.append(h)
        except grpc.RpcError:
            pass  # the daemon was killed or drained

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("fsync", ["interval", "always"])
def test_kill9_mid_ingest_keeps_acknowledged(daemon_factory, pb, fsync):
    d = daemon_factory("--fsync", fsync).start()
    stop = threading.Event()
    acked: list[str] = []
    unary_acked: list[str] = []
    streamer = _streamer(pb, d.grpc, "s", acked, stop)
    u = _unary_recorder(pb, d.grpc, unary_acked, stop)
    wait_until(lambda: len(acked) > 2000 and len(unary_acked) > 50, 30, "acknowledged events")
    d.proc.kill()  # SIGKILL mid-ingest
    d.proc.wait(10)
    stop.set()
    streamer.join(10)
    u.join(10)
    n_acked, n_unary = len(acked), len(unary_acked)
    d2 = daemon_factory("--fsync", fsync, data_dir=d.data_dir).start()
    rows = stats(d2)
    missing = [h for h in acked[:n_acked] + unary_acked[:n_unary] if h not in rows]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert d2.record("store recovered")["events_replayed"] >= n_acked + n_unary


def test_sigterm_drains_and_exits_zero(daemon_factory, pb):
    d = daemon_factory().start()
    stop = threading.Event()
    acked: list[str] = []
    streamer = _streamer(pb, d.grpc, "t", acked, stop)
    wait_until(lambda: len(acked) > 500, 30, "acknowledged events")
    rc = d.terminate(30)
    streamer.join(15)
    assert not streamer.is_alive(), "the stream was not ended by the drain"
    stop.set()
    assert rc == 0, d.output()
    msgs = [r.get("msg") for r in d.log]
    assert "shutdown requested: draining" in msgs and "stopped cleanly" in msgs
    d2 = daemon_factory(data_dir=d.data_dir).start()
    rows = stats(d2)
    assert all(h in rows for h in acked), "an acknowledged event is missing after a clean stop"
    assert d2.record("store recovered")["snapshot"], "a clean stop leaves a snapshot"


def test_history_window_queries_survive_kill9(daemon_factory, pb):
    """--history: window answers over HTTP and gRPC are the same bits after kill -9, rebuilt
    from a snapshot (taken after every write here) plus the log written after it."""
    hold_pb2, hold_grpc = pb
    d = daemon_factory("--history", "--snapshot-bytes", "1").start()
    code, body = http("POST", d.http + "/v1/holds", [
        {"token_id": "T", "holder_id": "alice", "start": 0, "end": 10, "weight": 2.0},
        {"token_id": "T", "holder_id": "bob", "start": 50, "weight": 0.1},
        {"token_id": "U", "holder_id": "carol", "start": 5, "end": 95, "weight": 1 / 3}])
    assert code == 200 and body["accepted"] == 3
    wait_until(lambda: any(d.data_dir.glob("snap-*.snap")), 10, "a snapshot")
    d.kill()  # the first writes are in a snapshot; the next ones go to the log only
    d = daemon_factory("--history", data_dir=d.data_dir).start()
    with grpc.insecure_channel(d.grpc) as ch:
        hm = hold_grpc.HoldMetricsStub(ch)
        assert hm.Record(hold_pb2.HoldMsg(token_id="T", holder_id="alice", start=ts(40), end=ts(70), weight=0.7),
                         timeout=10).ok
        assert hm.CloseHold(hold_pb2.CloseRequest(token_id="T", holder_id="bob", at=ts(80)), timeout=10).closed == 1

    def answers(dm) -> tuple:
        _, top = http("GET", dm.http + "/v1/top?n=10&now=10000&window=5,60")
        _, top_t = http("GET", dm.http + "/v1/top?n=10&token=T&now=10000&window=1970-01-01T00:00:30Z,1970-01-01T00:01:15Z")
        _, stats_w = http("GET", dm.http + "/v1/stats?now=10000&window=0,100")
        with grpc.insecure_channel(dm.grpc) as ch:
            q = hold_grpc.HoldMetricsQueryStub(ch)
            g = q.TopN(hold_pb2.TopRequest(n=10, at=ts(10000), window=hold_pb2.Window(start=ts(5), end=ts(60))), timeout=10)
        return top, top_t, stats_w, [(s.holder_id, s.weighted_score, s.total_seconds) for s in g.stats]

    before = answers(d)
    top, _, stats_w, grpc_rows = before
    # [5, 60): alice 5 s x 2 + 20 s x 0.7, bob 10 s x 0.1, carol 55 s x 1/3.
    assert {r["holder_id"]: r["score"] for r in top} == {"alice": 5 * 2 + 20 * 0.7, "bob": 10 * 0.1, "carol": 55 / 3}
    assert [(r["holder_id"], r["score"], r["total_seconds"]) for r in top] == grpc_rows
    assert {r["holder_id"] for r in stats_w} == {"alice", "bob", "carol"}

    d.kill()
    d2 = daemon_factory("--history", data_dir=d.data_dir).start()
    rec = d2.record("store recovered")
    assert rec["snapshot"] and rec["records"] >= 1, rec  # snapshot + log both used
    assert answers(d2) == before

    # Without --history the same data dir still serves unwindowed reads; a window is refused.
    d2.kill()
    d3 = daemon_factory(data_dir=d.data_dir).start()
    code, body = http("GET", d3.http + "/v1/top?window=5,60")
    assert code == 400 and "--history" in body["error"]
    code, body = http("GET", d3.http + "/v1/top?window=60,5")
    assert code == 400 and "end 5 is before start 60" in body["error"]
    with grpc.insecure_channel(d3.grpc) as ch:
        q = hold_grpc.HoldMetricsQueryStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            q.TopN(hold_pb2.TopRequest(window=hold_pb2.Window(start=ts(5), end=ts(60))), timeout=10)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert set(stats(d3)) == {"alice", "bob", "carol"}


def test_second_process_gets_locked_error(daemon_factory, tmp_path):
    d = daemon_factory().start()
    p = subprocess.run([str(BINARY), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
                        "--data-dir", str(d.data_dir)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "locked" in p.stderr


def test_auth_token_guards_writes_only(daemon_factory, pb, tmp_path):
    hold_pb2, hold_grpc = pb
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    d = daemon_factory("--auth-token-file", str(tok)).start()
    m = hold_pb2.HoldMsg(token_id="T", holder_id="a", start=ts(1))
    with grpc.insecure_channel(d.grpc) as ch:
        hm, q = hold_grpc.HoldMetricsStub(ch), hold_grpc.HoldMetricsQueryStub(ch)
        for md in ([], [("authorization", "Bearer wrong")]):
            with pytest.raises(grpc.RpcError) as e:
                hm.Record(m, metadata=md, timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert hm.Record(m, metadata=[("authorization", "Bearer s3cret")], timeout=10).ok
        assert len(q.Ranking(empty_pb2.Empty(), timeout=10).stats) == 1
    ev = {"token_id": "T", "holder_id": "b", "start": 1}
    assert http("POST", d.http + "/v1/holds", ev)[0] == 401
    assert http("POST", d.http + "/v1/holds", ev, token="wrong")[0] == 401
    assert http("POST", d.http + "/v1/holds", ev, token="s3cret")[0] == 200
    assert http("GET", d.http + "/v1/stats")[0] == 200


@pytest.mark.parametrize("args,key", [
    (["--fsync", "sometimes"], "fsync"),
    (["--grpc-addr", "0.0.0.0:0"], "grpc_addr"),
    (["--ttl", "forever"], "--ttl"),
])
def test_bad_config_names_the_key(args, key, tmp_path):
    p = subprocess.run([str(BINARY), "--data-dir", str(tmp_path / "d"), *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and key in p.stderr, p.stderr


def test_bad_toml_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('grpc_addr = "127.0.0.1:0"\nfsnyc = "always"\n')
    p = subprocess.run([str(BINARY), "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "fsnyc" in p.stderr, p.stderr


def test_durations_in_seconds_mean_the_same_as_for_serve(daemon_factory, tmp_path):
    """ttl = 3600 (a TOML integer: seconds) is what `poh-holdmetrics serve --config` reads too."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('ttl = 3600\nfsync_interval = 0.01\ngc_interval = "90"\n')
    d = daemon_factory("--config", str(cfg)).start()
    assert http("GET", d.http + "/healthz")[0] == 200
    cfg.write_text("ttl = -1\n")
    p = subprocess.run([str(BINARY), "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "ttl" in p.stderr and ">= 0" in p.stderr, p.stderr


def test_pprof_needs_the_token_with_auth_reads(daemon_factory, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    d = daemon_factory("--debug-pprof", "--auth-token-file", str(tok), "--auth-reads").start()
    assert http("GET", d.http + "/debug/pprof/")[0] == 401
    assert http("GET", d.http + "/debug/pprof/", token="s3cret")[0] == 200
    assert http("GET", d.http + "/healthz")[0] == 200


def test_print_config_schema_is_the_committed_file():
    p = subprocess.run([str(BINARY), "--print-config-schema"], capture_output=True, text=True, timeout=30)
    committed = (Path(__file__).resolve().parents[2] / "testdata" / "holdmetricsd-config.schema.json").read_text()
    assert p.returncode == 0 and p.stdout == committed, "regenerate: go run ./cmd/holdmetricsd --print-config-schema " \
        "> testdata/holdmetricsd-config.schema.json"
