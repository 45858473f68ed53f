"""The airdrop, end to end: chain data -> campaign rules -> exact amounts -> merkle trees with
proofs -> a run manifest anyone can re-run. The work is the Go core's (poh_transfers, then
poh_airdrop: rules, split, trees and files); this module carries the rules (campaign.toml or
a Python object), the inputs and the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

from . import _native
from ._errors import CampaignError
from ._time import TimeLike, resolve_now, resolve_window, to_seconds
from ._version import __version__

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "poh-holdmetrics-airdrop-v1"
#: The files a run writes (besides the manifest); the merkle files as the rules ask.
OUTPUTS = ("amounts.csv", "breakdown.csv", "merkle-standard.json", "merkle-uniswap.json")
_SECTIONS = ("eligibility", "exclude", "multipliers", "transform", "cap", "merkle")


def _plain(value: Any, where: str) -> Any:
    """TOML / Python values as the JSON the core reads: datetimes as Unix seconds, the
    rest as they are (ints of any size stay exact)."""
    if isinstance(value, datetime):
        return to_seconds(value, where)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not value.is_integer() and "e" in repr(value):
        raise CampaignError(f"rules: {where}: {value!r}: write the multiplier as a decimal string (e.g. \"0.00001\")")
    return value


class CampaignRules:
    """A campaign's rules: what ``campaign.toml`` declares, as a Python object.

    ``CampaignRules(eligibility={"min_balance": 10**18, "min_duration": "30d"},
    multipliers={"duration": [{"at": "90d", "multiplier": "1.5"}]}, cap=5 * 10**21)`` is the
    same campaign as the TOML file with those tables. Tables and keys (each optional):

    * ``eligibility``: ``min_balance`` held without a break for ``min_duration`` inside the
      window (in one token), ``min_score``, ``snapshot`` (a time: holders with a balance of at
      least ``snapshot_min_balance``, default 1, then);
    * ``exclude``: ``addresses``, ``files`` (one address a line, ``#`` comments; relative to
      the rules file), ``contracts`` / ``contract_files`` (the contracts you know of: pools,
      bridges), ``burn`` (default true: the zero address and common burn addresses);
    * ``multipliers``: ``duration`` tiers by the longest unbroken hold in the window,
      ``balance`` tiers by the time-weighted average balance (``[{at, multiplier}]``, the
      highest reached applies), ``tokens`` (a weight per token for multi-token campaigns);
    * ``transform``: ``"none"``, ``"sqrt"`` (floor of the square root) or ``"log2"``
      (floor of 2^32 * log2(1 + score)), applied to the score before the multipliers;
    * ``cap``: the most any holder gets of this epoch's pool;
    * ``merkle``: ``leaf`` (fields from ``index``, ``address``, ``amount``, ``chain_id``;
      default ``["address", "amount"]``), ``chain_id``, ``formats`` (``"standard"`` -- the
      OpenZeppelin StandardMerkleTree -- and/or ``"uniswap"``; default ``["standard"]``).

    Amounts are integers in the token's smallest unit (ints or decimal strings); durations
    are seconds or strings such as ``"90d"``; multipliers are decimals (at most 18 places).
    An unknown key or a malformed value is a CampaignError naming it (``check()``, or when
    the campaign runs).
    """

    def __init__(self, rules: Mapping[str, Any] | None = None, *, base_dir: str | os.PathLike = ".",
                 **tables: Any) -> None:
        merged = dict(rules or {})
        merged.update(tables)
        self._rules = _plain(merged, "rules")
        self.base_dir = os.path.abspath(os.fspath(base_dir))
        self.path: str | None = None
        self.sha256: str | None = None

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> CampaignRules:
        """The rules of a TOML file (relative exclusion files are found beside it)."""
        import tomllib
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CampaignError(f"rules: {path}: {e.strerror or e}") from None
        try:
            parsed = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise CampaignError(f"rules: {path}: not UTF-8 at byte {e.start}") from None
        except tomllib.TOMLDecodeError as e:
            raise CampaignError(f"rules: {path}: {e}") from None
        r = cls(parsed, base_dir=os.path.dirname(os.path.abspath(path)))
        r.path, r.sha256 = os.path.abspath(path), hashlib.sha256(data).hexdigest()
        return r

    def to_dict(self) -> dict[str, Any]:
        """The rules as the JSON-shaped dict the core reads."""
        return json.loads(json.dumps(self._rules))

    def check(self) -> None:
        """Raise CampaignError if the rules are malformed (an unknown key, a bad value)."""
        _request(0, {"op": "check", "rules": self._rules})

    def __repr__(self) -> str:
        return f"CampaignRules({self._rules!r})"


def _request(holds: int, req: dict[str, Any]) -> Any:
    """poh_airdrop: one JSON request, the JSON answer."""
    ffi, lib = _native.load()
    r = ffi.new("poh_handle *")
    _native.call(lib.poh_airdrop, holds, ffi.new("char[]", json.dumps(req).encode("utf-8")), r)
    try:
        rows, nbytes = ffi.new("int64_t *"), ffi.new("int64_t *")
        _native.call(lib.poh_result_size, r[0], rows, nbytes)
        buf = ffi.new("char[]", int(nbytes[0]) + 1)
        _native.call(lib.poh_result_text, r[0], buf, int(nbytes[0]) + 1)
        return json.loads(ffi.string(buf).decode("utf-8"))
    finally:
        lib.poh_free(r[0], ffi.NULL)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rel(path: str, base: str) -> str:
    """path relative to base when it is under it (the manifest travels with its inputs)."""
    path = os.path.abspath(path)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def run_airdrop(transfers: Any, *, rules: CampaignRules | Mapping[str, Any] | str | os.PathLike, pool: int,
                window: tuple[TimeLike, TimeLike], out: str | os.PathLike, now: TimeLike | None = None,
                blocks: Any = None, kind: str = "transfer", opening: Any = None, opening_time: TimeLike = 0,
                zero_holder: bool = False, previous: str | os.PathLike | None = None,
                inputs: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Run a campaign: the holds of ``transfers`` (as ``transfers_to_holds`` takes them,
    with ``blocks``, ``kind``, ``opening``...) over ``window`` [t0, t1) as of ``now``
    (default: the wall clock; transfers after it are left out), ``rules`` (a CampaignRules,
    a mapping, or a campaign.toml path), ``pool`` split exactly (integers, largest remainder,
    summing to the pool). Writes into ``out``: ``amounts.csv`` (index, address, amount),
    ``breakdown.csv`` (every holder: base score, each rule's effect, the amount), the merkle
    files the rules ask for (``merkle-standard.json``: OpenZeppelin's standard-v1, loadable by
    ``StandardMerkleTree.load``; ``merkle-uniswap.json``: the merkle-distributor's format) and
    ``manifest.json`` (the sha256 of every input and output, the parameters, the roots).
    ``previous``: the previous epoch's output directory; amounts are then cumulative (this
    epoch's split added to the last), and the run is refused if a holder would get less than
    before or the total exceed the pools so far. ``inputs`` names the files ``transfers``,
    ``blocks`` and ``opening`` were read from, for the manifest (the CLI fills it in).

    Returns the manifest (a dict). Raises CampaignError (a rule, the request, a file; rules
    that leave nobody; a cap that cannot fit), InvalidEventError (a bad transfer row).
    Needs the native library and pyarrow."""
    from ._transfers import holds_handle
    if not isinstance(rules, CampaignRules):
        rules = CampaignRules.from_toml(rules) if isinstance(rules, (str, os.PathLike)) else CampaignRules(rules)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        raise CampaignError(f"pool {pool!r} must be an int >= 0 (the token's smallest unit)")
    w = resolve_window(window)
    if w is None:
        raise CampaignError("window is required: (t0, t1)")
    t_now = resolve_now(now)
    out = os.path.abspath(os.fspath(out))
    ffi, lib = _native.load()
    h = holds_handle(transfers, blocks, kind, opening, opening_time, zero_holder, until=t_now)
    try:
        req: dict[str, Any] = {"op": "run", "rules": rules.to_dict(), "rules_dir": rules.base_dir,
                               "window": list(w), "now": t_now, "pool": str(pool), "out": out}
        if previous is not None:
            req["previous"] = os.path.abspath(os.fspath(previous))
        answer = _request(h, req)
    finally:
        lib.poh_free(h, ffi.NULL)
    files = {kind_: [{"path": _rel(p, out), "sha256": _sha256_file(p)} for p in paths]
             for kind_, paths in (inputs or {}).items()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": __version__,
        "parameters": {"window": list(w), "now": t_now, "pool": str(pool), "kind": kind,
                       "opening_time": to_seconds(opening_time, "opening_time"), "zero_holder": bool(zero_holder),
                       "previous": _rel(req["previous"], out) if previous is not None else None},
        "rules": {"path": _rel(rules.path, out) if rules.path else None, "sha256": rules.sha256,
                  "resolved": answer["rules"]},
        "inputs": {**files, "exclusions": [{"path": _rel(f["path"], out), "sha256": f["sha256"]}
                                           for f in answer["inputs"] or []]},
        "epoch": answer["epoch"],
        "holders": answer["holders"],
        "awarded": answer["awarded"],
        "total": answer["total"],
        "removed": answer["removed"],
        "roots": answer["roots"],
        "outputs": answer["files"],
    }
    tmp = os.path.join(out, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, os.path.join(out, MANIFEST))
    return manifest


def verify_merkle(path: str | os.PathLike, address: str | None = None) -> list[dict[str, Any]]:
    """Check a merkle file whole (a standard-v1 dump: every node and leaf; a
    merkle-distributor JSON: every claim's proof, the total, the count) or a run's output
    directory (every tree, that each holds exactly amounts.csv's claims, and the manifest's
    sha256 of every output). With ``address``: that address's claim (its amount and proof,
    checked against the root). Returns one dict per tree (path, format, root, claims,
    total, claim). Raises CampaignError saying what does not verify."""
    req: dict[str, Any] = {"op": "verify", "path": os.path.abspath(os.fspath(path))}
    if address is not None:
        req["address"] = address
    return _request(0, req)


def read_inputs(paths: Sequence[str], what: str) -> Any:
    """CSV / Parquet chain-data files as one pyarrow Table (amounts and ids read as text, so
    they stay exact), as the CLI reads --transfers, --blocks and --opening."""
    from ._cli_errors import CliError
    from ._cli_readers import read_tables
    from ._transfers import ALIASES
    text = sorted({a for role in ("token_id", "from_address", "to_address", "holder_id", "value", "balance", "delta")
                   for a in ALIASES[role]}) if what != "blocks" else []
    try:
        return read_tables(paths, "auto", text, f"--{what}")[0]
    except CliError as e:
        raise CampaignError(str(e)) from None


def verify_run(manifest_path: str | os.PathLike, read_tables: Any = None) -> dict[str, Any]:
    """Re-run the campaign a manifest describes, from the files it names, into a temporary
    directory, and compare. Returns ``{"same": bool, "roots": {...}, "differences": [...]}``:
    a changed input (its sha256), a different root or output file."""
    mpath = os.path.abspath(os.fspath(manifest_path))
    base = os.path.dirname(mpath)
    try:
        with open(mpath, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        raise CampaignError(f"{mpath}: cannot read the manifest: {e}") from None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise CampaignError(f"{mpath}: not a {MANIFEST_FORMAT} manifest")
    diffs: list[str] = []

    def where(rel: str) -> str:
        return rel if os.path.isabs(rel) else os.path.join(base, rel)

    for kind_, entries in m["inputs"].items():
        for e in entries:
            p = where(e["path"])
            if not os.path.exists(p):
                raise CampaignError(f"{mpath}: input {kind_} {p} is missing: cannot re-run")
            if _sha256_file(p) != e["sha256"]:
                diffs.append(f"input {kind_} {e['path']} changed (sha256 {_sha256_file(p)}, manifest {e['sha256']})")
    par = m["parameters"]
    if m["rules"]["path"]:
        rules: Any = CampaignRules.from_toml(where(m["rules"]["path"]))
        if rules.sha256 != m["rules"]["sha256"]:
            diffs.append(f"rules {m['rules']['path']} changed (sha256 {rules.sha256}, manifest {m['rules']['sha256']})")
    else:
        rules = CampaignRules(m["rules"]["resolved"], base_dir=base)
    tables: dict[str, Any] = {}
    for kind_ in ("transfers", "blocks", "opening"):
        paths = [where(e["path"]) for e in m["inputs"].get(kind_, [])]
        tables[kind_] = (read_tables or read_inputs)(paths, kind_) if paths else None
    if tables["transfers"] is None:
        raise CampaignError(f"{mpath}: the manifest names no transfers files: cannot re-run")
    with tempfile.TemporaryDirectory(prefix="poh-verify-run-") as tmp:
        again = run_airdrop(tables["transfers"], rules=rules, pool=int(par["pool"]), window=tuple(par["window"]),
                            now=par["now"], out=tmp, blocks=tables["blocks"], kind=par["kind"],
                            opening=tables["opening"], opening_time=par["opening_time"],
                            zero_holder=par["zero_holder"],
                            previous=where(par["previous"]) if par["previous"] else None)
    for fmt in sorted(set(m["roots"]) | set(again["roots"])):
        if m["roots"].get(fmt) != again["roots"].get(fmt):
            diffs.append(f"{fmt} root {again['roots'].get(fmt)} differs from the manifest's {m['roots'].get(fmt)}")
    for name in sorted(set(m["outputs"]) | set(again["outputs"])):
        if m["outputs"].get(name) != again["outputs"].get(name):
            diffs.append(f"output {name}: sha256 {again['outputs'].get(name)}, manifest {m['outputs'].get(name)}")
    return {"same": not diffs, "roots": again["roots"], "differences": diffs}
