"""poh_holdmetrics on PySpark: a recipe, not an engine. Chain transfers -> holds -> per-holder
scores -> top holders and an exact airdrop, with Spark doing the partitioning and
poh_holdmetrics (the same kernel as one process) doing the work inside each partition
through ``mapInArrow``. The results equal the single-process ones on the same rows:
exactly in exact mode, bit for bit for float scores.

Why it is equal to one process:
* rows are partitioned by holder as the library compares holders (an address in lowercase):
  every balance and every score is computed in one partition from all of its rows;
* inside a partition the rows are sorted by (block_number, log_index) and the copy's side,
  the order one ``transfers_to_holds`` call takes them in, and the holds come out in the
  single-process order of each holder's pairs, which the scoring then sums in;
* rankings are ordered by the exact score's 48-byte big-endian bytes (Spark compares
  binary as unsigned bytes: the integers' order), then holder_id (UTF-8 bytes, as ours).

A transfer goes to its sender's partition with the zero address as receiver, and to its
receiver's with the zero address as sender (the zero address mints and burns and is never a
holder), so each side sees exactly its own balance change.

fork: PySpark's Python workers are forked by its worker daemon (``pyspark.daemon``), which
never loads the library; each worker loads it on first use, so the native kernel runs in
every worker. Keep it that way: do not preload poh_holdmetrics into the daemon
(``spark.python.daemon.module``); a worker forked after the library was loaded raises
ForkedProcessError (poh_holdmetrics.dask's check) rather than hang.

Run it: ``python examples/spark/holdmetrics_spark.py DATASET`` (a Parquet dataset of
transfers: token_id, from_address, to_address, value as a decimal string, block_number,
log_index, time) prints the top holders and writes airdrop.csv. Needs pyspark and Java.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

ZERO = "0x" + "0" * 40
TRANSFER_COLUMNS = ["token_id", "from_address", "to_address", "value", "block_number", "log_index", "time"]

HOLDS_SCHEMA = T.StructType([
    T.StructField("token_id", T.StringType()), T.StructField("holder_id", T.StringType()),
    T.StructField("start", T.LongType()), T.StructField("end", T.LongType()),
    T.StructField("weight", T.BinaryType()),  # the balance, 32 bytes big-endian (uint256)
])
SCORES_SCHEMA = T.StructType([
    T.StructField("holder_id", T.StringType()), T.StructField("score", T.DoubleType()),
    T.StructField("exact", T.StringType()),  # exact mode: the exact score in decimal, else null
    T.StructField("rank_key", T.BinaryType()),  # exact mode: 48 bytes big-endian, sorts as the integers
    T.StructField("total_seconds", T.LongType()), T.StructField("events", T.LongType()),
    T.StructField("open_holds", T.LongType()), T.StructField("tokens", T.LongType()),
])


def _ship(df: DataFrame) -> None:
    """Send this file to the executors (their Python workers import it to run the
    mapInArrow functions below)."""
    sc = df.sparkSession.sparkContext
    if __file__ not in _SHIPPED.setdefault(id(sc), set()):
        sc.addPyFile(__file__)
        _SHIPPED[id(sc)].add(__file__)


_SHIPPED: dict[int, set[str]] = {}


def canonical(col: Any) -> Any:
    """A holder id as the library compares it: an address (0x + 40 hex digits) in lowercase."""
    return F.when(col.rlike("^0x[0-9a-fA-F]{40}$"), F.lower(col)).otherwise(col)


def by_holder(transfers: DataFrame, partitions: int) -> DataFrame:
    """Each transfer once per side, keyed by that side's holder, partitioned by holder and
    sorted within each partition in the order one process takes the rows in."""
    t = transfers.select(*TRANSFER_COLUMNS)
    moves = canonical(F.col("from_address")) != canonical(F.col("to_address"))  # self transfers change nothing
    sent = (t.where(moves & (canonical(F.col("from_address")) != ZERO))
            .withColumn("to_address", F.lit(ZERO)).withColumn("_side", F.lit(0))
            .withColumn("_holder", canonical(F.col("from_address"))))
    received = (t.where(moves & (canonical(F.col("to_address")) != ZERO))
                .withColumn("from_address", F.lit(ZERO)).withColumn("_side", F.lit(1))
                .withColumn("_holder", canonical(F.col("to_address"))))
    return (sent.unionByName(received).repartition(partitions, "_holder")
            .sortWithinPartitions("block_number", "log_index", "_side"))


def _holds_of(batches: Iterator[Any]) -> Iterator[Any]:
    """mapInArrow: one partition's transfers -> its holds (poh_holdmetrics.transfers_to_holds)."""
    import pyarrow as pa

    import poh_holdmetrics as phm
    rows = pa.Table.from_batches(list(batches)).drop_columns(["_side", "_holder"])
    holds = phm.transfers_to_holds(rows)
    out = pa.table({"token_id": holds.column("token_id").cast(pa.string()),
                    "holder_id": holds.column("holder_id").cast(pa.string()), "start": holds.column("start"),
                    "end": holds.column("end"), "weight": holds.column("weight").cast(pa.binary())})
    yield from out.to_batches()


def holds_from_transfers(transfers: DataFrame, partitions: int = 8) -> DataFrame:
    """The holds of every (token, holder), partitioned by holder, each holder's in
    one-process order (score them with ``scores``, which keeps the partitions)."""
    _ship(transfers)
    return by_holder(transfers, partitions).mapInArrow(_holds_of, HOLDS_SCHEMA)


def _scorer(now: int, window: tuple[int, int] | None, exact: bool):
    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        import poh_holdmetrics as phm
        holds = pa.Table.from_batches(list(batches), schema=pa.schema(
            [("token_id", pa.string()), ("holder_id", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
             ("weight", pa.binary())]))
        holds = holds.set_column(4, "weight", holds.column("weight").cast(pa.binary(32)))
        r = phm.score_by_holder(holds, now, window, exact=exact, threads=1)
        t = r.to_arrow()
        ints = r.scores() if exact else None
        yield pa.record_batch({
            "holder_id": t.column("holder_id").cast(pa.string()).combine_chunks(),
            "score": pa.array([float(s) for s in ints], pa.float64()) if exact else t.column("score").combine_chunks(),
            "exact": pa.array([str(s) for s in ints] if exact else [None] * len(r), pa.string()),
            "rank_key": pa.array([s.to_bytes(48, "big") for s in ints] if exact else [None] * len(r), pa.binary()),
            **{k: t.column(k).combine_chunks() for k in ("total_seconds", "events", "open_holds", "tokens")},
        })
    return score


def scores(holds: DataFrame, now: int, window: tuple[int, int] | None = None, *, exact: bool = True) -> DataFrame:
    """One row per holder (per partition of holds_from_transfers' output): the kernel of
    poh_holdmetrics.score_by_holder on each partition. ``now`` is an explicit time: every
    executor must use the same one."""
    _ship(holds)
    return holds.mapInArrow(_scorer(now, window, exact), SCORES_SCHEMA)


def ranked(scores_df: DataFrame, exact: bool = True) -> DataFrame:
    """The rows in ranking order: score descending, then holder_id ascending."""
    key = F.desc("rank_key") if exact else F.desc("score")
    return scores_df.orderBy(key, F.asc("holder_id"))


def top_holders(scores_df: DataFrame, n: int, exact: bool = True) -> list[Any]:
    return ranked(scores_df, exact).limit(n).collect()


def airdrop(scores_df: DataFrame, pool: int, **rules: Any) -> list[Any]:
    """The exact split of pool (poh_holdmetrics.allocate_rewards: largest remainder, sums to
    the pool) over the exact scores; the split needs every holder's score at once, so it
    runs on the driver, on one row per holder."""
    import poh_holdmetrics as phm
    rows = scores_df.select("holder_id", "exact").collect()
    return phm.allocate_rewards(((r.holder_id, int(r.exact)) for r in rows), pool, **rules)


def main(dataset: str, now: int, pool: int) -> None:
    import poh_holdmetrics as phm
    spark = (SparkSession.builder.master("local[2]").appName("holdmetrics")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    transfers = spark.read.parquet(dataset)
    s = scores(holds_from_transfers(transfers, partitions=4), now).cache()
    print("top holders:")
    for r in top_holders(s, 5):
        print(f"  {r.holder_id} {r.exact}")
    rewards = airdrop(s, pool)
    phm.write_rewards_csv(rewards, "airdrop.csv")
    print(f"airdrop: {len(rewards)} holders, {sum(r.amount for r in rewards)} units")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_712_000_000,
         int(sys.argv[3]) if len(sys.argv) > 3 else 10**24)
