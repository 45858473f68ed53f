"""Settings: precedence (explicit > env > file > defaults), TOML and YAML files, errors that
name the key and the source, and the daemon flags derived from the settings."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import REPO
from poh_holdmetrics._config import (_SPEC, DAEMON_KEYS, ENV_PREFIX, KEYS, ConfigError, Settings, _parse_bool,
                                     _parse_int, format_duration, load_settings, parse_duration)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_match_the_daemon():
    s = load_settings(env={})
    assert s.grpc_addr == "127.0.0.1:60051"
    assert s.http_addr == "127.0.0.1:9100"
    assert s.fsync == "interval"
    assert s.ttl == 0.0 and s.gc_interval == 60.0
    assert s.log_level == "info"
    assert all(s.source(k) == "default" for k in KEYS)
    assert s.daemon_args() == []  # the daemon applies its own defaults
    assert s.base_url == "http://127.0.0.1:9100"
    for k in ("grpc_addr", "http_addr", "data_dir", "fsync", "ttl", "gc_interval", "log_level"):
        assert k in DAEMON_KEYS


def test_precedence_explicit_over_env_over_file_over_default(tmp_path):
    cfg = write(tmp_path, "poh.toml", 'ttl = "2h"\ngc_interval = "30s"\nlog_level = "warn"\nfsync = "none"\n')
    env = {"POH_HOLDMETRICS_GC_INTERVAL": "5s", "POH_HOLDMETRICS_LOG_LEVEL": "debug"}
    s = load_settings(cfg, env=env, log_level="error", collect_interval=None)
    assert (s.ttl, s.source("ttl")) == (7200.0, f"config {cfg}")
    assert (s.gc_interval, s.source("gc_interval")) == (5.0, "env POH_HOLDMETRICS_GC_INTERVAL")
    assert (s.log_level, s.source("log_level")) == ("error", "argument")
    assert (s.fsync, s.source("fsync")) == ("none", f"config {cfg}")
    assert s.source("collect_interval") == "default"  # None = not given
    assert s.collect_interval == 15.0


def test_config_path_from_env(tmp_path):
    cfg = write(tmp_path, "poh.toml", 'http_addr = "127.0.0.1:9200"\n')
    s = load_settings(env={"POH_HOLDMETRICS_CONFIG": str(cfg)})
    assert s.http_addr == "127.0.0.1:9200"
    assert s.base_url == "http://127.0.0.1:9200"


def test_yaml_file(tmp_path):
    pytest.importorskip("yaml", reason="YAML config files need PyYAML (an optional dependency)")
    cfg = write(tmp_path, "poh.yaml", "ttl: 90m\ngc_interval: 10\nexpose: true\ndata_dir: /var/lib/poh\n")
    s = load_settings(cfg, env={})
    assert (s.ttl, s.gc_interval, s.expose, s.data_dir) == (5400.0, 10.0, True, "/var/lib/poh")


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    cfg = write(tmp_path, "poh.yml", "ttl: 1h\n")
    with pytest.raises(ConfigError, match="PyYAML"):
        load_settings(cfg, env={})


@pytest.mark.parametrize("text, key, fragment", [
    ('ttl = "soon"\n', "ttl", "not a duration"),
    ('ttl = "-5s"\n', "ttl", "not a duration"),
    ("gc_interval = -1\n", "gc_interval", ">= 0"),
    ('fsync = "sometimes"\n', "fsync", "always, interval, none"),
    ('http_addr = "localhost"\n', "http_addr", "host:port"),
    ("expose = 3\n", "expose", "not a boolean"),
    ('max_batch = "many"\n', "max_batch", "not an integer"),
    ('colour = "blue"\n', "colour", "unknown key"),
    ("[server]\nhttp_addr = \"x:1\"\n", "server", "not a table"),
])
def test_file_errors_name_key_and_source(tmp_path, text, key, fragment):
    cfg = write(tmp_path, "poh.toml", text)
    with pytest.raises(ConfigError) as ei:
        load_settings(cfg, env={})
    e = ei.value
    assert (e.key, e.source) == (key, f"config {cfg}")
    assert str(e).startswith(f"config {cfg}: {key}: ")
    assert fragment in str(e)


def test_env_errors_name_key_and_source():
    with pytest.raises(ConfigError) as ei:
        load_settings(env={"POH_HOLDMETRICS_TTL": "forever"})
    assert (ei.value.key, ei.value.source) == ("ttl", "env POH_HOLDMETRICS_TTL")
    with pytest.raises(ConfigError, match="env POH_HOLDMETRICS_COLOUR: colour: unknown"):
        load_settings(env={"POH_HOLDMETRICS_COLOUR": "blue"})
    # the package's own variables are not settings
    load_settings(env={"POH_HOLDMETRICS_PURE": "1", "POH_HOLDMETRICS_LIB": "/x.so"})


def test_explicit_errors_name_key_and_source():
    with pytest.raises(ConfigError, match=r"^argument: fsync: 'often' is not one of"):
        load_settings(env={}, fsync="often")
    with pytest.raises(ConfigError, match="^argument: nope: unknown key"):
        load_settings(env={}, nope=1)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
    bad = write(tmp_path, "bad.toml", "ttl = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(bad, env={})


@pytest.mark.parametrize("text, seconds", [
    ("0", 0.0), ("1.5", 1.5), ("5ms", 0.005), ("1h30m", 5400.0), ("2m3.5s", 123.5), ("250us", 0.00025),
    ("+1s", 1.0), ("100ns", 1e-7),
])
def test_parse_duration_go_syntax(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "h", "1d", "1h 30m", "-1s", "nan", "inf", True, None, [1]])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_daemon_args_carry_non_defaults_with_go_durations(tmp_path):
    cfg = write(tmp_path, "poh.toml", 'ttl = "36h"\nexpose = true\ncollect_interval = "1s"\n')
    s = load_settings(cfg, env={"POH_HOLDMETRICS_FSYNC": "always"}, http_addr="127.0.0.1:0")
    args = s.daemon_args()
    assert args == ["--http-addr=127.0.0.1:0", "--expose=true", "--fsync=always", "--ttl=129600s"]
    assert format_duration(0.005) == "0.005s"
    assert parse_duration(format_duration(1.25)) == 1.25


def test_settings_are_immutable_and_replace_validates():
    s = Settings()
    with pytest.raises(AttributeError):
        s.ttl = 5  # type: ignore[misc]
    t = s.replace(ttl="1m")
    assert (t.ttl, t.source("ttl"), s.ttl) == (60.0, "argument", 0.0)
    with pytest.raises(ConfigError, match="ttl"):
        s.replace(ttl="x")
    assert Settings() == load_settings(env={})


# The daemon's schema (holdmetricsd --print-config-schema, committed; a Go test keeps it
# current): the daemon keys here must have its names, types and defaults, and parse
# durations as it does.
SCHEMA = json.loads((REPO / "testdata" / "holdmetricsd-config.schema.json").read_text(encoding="utf-8"))
DURATION = SCHEMA["$defs"]["duration"]
_TYPES = {parse_duration: ("duration", float), _parse_bool: ("bool", bool), _parse_int: ("int", int)}


def test_daemon_keys_match_the_schema():
    props = SCHEMA["properties"]
    assert set(props) == set(DAEMON_KEYS)
    for key in DAEMON_KEYS:
        default, parser, _, _ = _SPEC[key]
        p = props[key]
        kind, py_type = _TYPES.get(parser, ("string", str))
        assert p["x-type"] == kind, key
        assert type(default) is py_type, key
        assert (p["x-env"], p["x-flag"]) == (ENV_PREFIX + key.upper(), "--" + key.replace("_", "-")), key
        if "x-default-computed" in p:
            continue  # below
        assert type(p["default"]) is py_type or (kind == "duration" and type(p["default"]) is int), key
        assert default == p["default"], key


def test_computed_daemon_defaults_are_left_to_the_daemon():
    """The daemon computes data_dir's default where it runs ($XDG_STATE_HOME, ~): Python's
    '' means "not set", so serve passes no flag and the daemon applies its own."""
    computed = [k for k, p in SCHEMA["properties"].items() if "x-default-computed" in p]
    assert computed == ["data_dir"]
    for key in computed:
        assert "default" not in SCHEMA["properties"][key]
        assert _SPEC[key][0] == ""
        assert load_settings(env={}).daemon_args() == []
        flag = SCHEMA["properties"][key]["x-flag"]
        env = {SCHEMA["properties"][key]["x-env"]: "/srv/poh"}
        assert load_settings(env=env).daemon_args() == [f"{flag}=/srv/poh"]


def _nanoseconds(go_duration: str) -> int:
    assert go_duration.endswith("s")
    return int(Decimal(go_duration[:-1]) * 10**9)


@pytest.mark.parametrize("vector", DURATION["x-accepted"], ids=lambda v: repr(v["value"]))
def test_duration_vectors_accepted(vector):
    """Each accepted value, as serve passes it on (format_duration), is the daemon's own
    reading to the nanosecond."""
    secs = parse_duration(vector["value"])
    passed = format_duration(secs)
    assert _nanoseconds(passed) == vector["nanoseconds"]
    assert _nanoseconds(format_duration(parse_duration(passed))) == vector["nanoseconds"]  # "-0s" would fail


@pytest.mark.parametrize("value", DURATION["x-rejected"], ids=repr)
def test_duration_vectors_rejected(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_toml_seconds_are_durations_for_serve_and_the_daemon(tmp_path):
    cfg = write(tmp_path, "poh.toml", "ttl = 3600\nfsync_interval = 0.01\ngc_interval = \"90\"\n")
    s = load_settings(cfg, env={})
    assert (s.ttl, s.fsync_interval, s.gc_interval) == (3600.0, 0.01, 90.0)
    assert s.daemon_args() == ["--fsync-interval=0.01s", "--ttl=3600s", "--gc-interval=90s"]


@pytest.mark.parametrize("value, message", [
    ("soon", "'soon' is not a duration (e.g. 5ms, 1h, or seconds)"),
    ("-1s", "'-1s' is not a duration (e.g. 5ms, 1h, or seconds)"),
    ("-5", "'-5' must be a finite duration >= 0"),
    (-1, "-1 must be a finite duration >= 0"),
    ("9223372037", "'9223372037' is out of range (at most 9223372036.854775807 seconds)"),
])
def test_duration_messages_match_the_daemon(value, message):
    with pytest.raises(ValueError) as ei:
        parse_duration(value)
    assert str(ei.value) == message
