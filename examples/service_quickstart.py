import asyncio
from poh_holdmetrics import Aggregator, HoldTracker, Scheduler, start_metrics_server

def show(rows):  # the scheduler hands it each snapshot; the open hold is scored up to now
    print([(r.holder_id, r.open_holds) for r in rows])

async def main():
    with Aggregator(ttl=86400) as agg, start_metrics_server(agg, "127.0.0.1:0") as metrics:
        tracker = HoldTracker(agg)
        async with Scheduler(agg, collect_interval=0.1, gc_interval=60, on_collect=show):
            await tracker.record_start("POH", "0xa11ce", weight=1500, at=1_700_000_000)
            await asyncio.sleep(0.25)  # two snapshots meanwhile
            await tracker.record_stop("POH", "0xa11ce", at=1_700_086_400)  # held for one day
        print(agg.top_n(1)[0].score, metrics.url)  # 129600000.0 http://127.0.0.1:<port>/metrics

asyncio.run(main())
