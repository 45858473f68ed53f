"""Scheduler: periodic snapshot collection and TTL garbage collection on asyncio.TaskGroup."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

    from ._aggregator import Aggregator
    from ._config import Settings

from ._events import HoldStat

log = logging.getLogger("poh_holdmetrics.scheduler")

OnCollect = Callable[[list[HoldStat]], "Awaitable[Any] | Any"]
OnGC = Callable[[int], "Awaitable[Any] | Any"]


def _interval(value: float | timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    if callable(value):  # the seed's Scheduler(tracker, on_collect) order
        raise TypeError(f"{what} {value!r} is a callable: the callbacks are on_collect= and on_gc= "
                        "(the seed's Scheduler(tracker, on_collect) is poh_holdmetrics.scheduler.Scheduler)")
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not s > 0:
        raise ValueError(f"{what} {value!r} must be > 0 seconds (or None to disable the loop)")
    return s


class Scheduler:
    """Runs two periodic loops against an aggregator until stopped:

    - collect, every ``collect_interval`` seconds: ``aggregator.snapshot()``, stored as
      ``last_snapshot`` and handed to ``on_collect`` (a function or a coroutine function);
    - gc, every ``gc_interval`` seconds: ``aggregator.gc()``, the count handed to ``on_gc``.

    Either interval may be None to disable its loop. The loops run at a fixed rate (a slow
    cycle makes the next start sooner; missed ticks are skipped, never bunched). An exception
    in a cycle or a callback is logged and the loop goes on. The library calls run in a
    worker thread (they release the GIL), so a large snapshot never blocks the event loop.

    ``async with Scheduler(...)`` starts the loops and stops them on exit; ``start()`` /
    ``stop()`` do the same by hand and ``run()`` runs until cancelled. Stopping cancels the
    loops and waits for them: no task outlives the scheduler.
    """

    def __init__(self, aggregator: Aggregator, collect_interval: float | timedelta | None = 15.0,
                 gc_interval: float | timedelta | None = 60.0, on_collect: OnCollect | None = None, *,
                 on_gc: OnGC | None = None) -> None:
        self.aggregator = aggregator
        self.collect_interval = _interval(collect_interval, "collect_interval")
        self.gc_interval = _interval(gc_interval, "gc_interval")
        self.on_collect = on_collect
        self.on_gc = on_gc
        self.collect_cycles = 0  #: completed collect cycles (callback included, errors or not)
        self.gc_cycles = 0  #: completed gc cycles
        self.errors = 0  #: cycles whose work or callback raised
        self.last_snapshot: list[HoldStat] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(cls, aggregator: Aggregator, settings: Settings, on_collect: OnCollect | None = None, *,
                      on_gc: OnGC | None = None) -> Scheduler:
        """A scheduler with the settings' collect_interval and gc_interval (0 disables)."""
        return cls(aggregator, settings.collect_interval or None, settings.gc_interval or None, on_collect,
                   on_gc=on_gc)

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def start(self) -> None:
        if self._tg is not None:
            raise RuntimeError("scheduler already started")
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        if self.collect_interval is not None:
            self._tasks.append(tg.create_task(self._loop("collect", self.collect_interval, self._collect),
                                              name="poh-scheduler-collect"))
        if self.gc_interval is not None:
            self._tasks.append(tg.create_task(self._loop("gc", self.gc_interval, self._gc),
                                              name="poh-scheduler-gc"))

    async def stop(self) -> None:
        """Cancel the loops and wait until they have ended. Idempotent."""
        tg, self._tg = self._tg, None
        if tg is None:
            return
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        # The loops end only by cancellation (they catch every Exception), so the group
        # raises nothing here; an exception from the `async with` body propagates as it
        # is instead of inside an ExceptionGroup.
        await tg.__aexit__(None, None, None)

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    async def run(self) -> None:
        """Run until cancelled."""
        async with self:
            await asyncio.Event().wait()

    async def _loop(self, name: str, interval: float, cycle: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                await cycle()
            except Exception:  # noqa: BLE001 - a failing cycle must not end the loop
                self.errors += 1
                log.exception("scheduler %s cycle failed; the loop goes on", name)
            now = loop.time()
            deadline += interval
            if deadline <= now:  # fell behind: skip the missed ticks
                deadline = now + interval - (now - deadline) % interval

    async def _collect(self) -> None:
        try:
            snap = await _in_thread(self.aggregator.snapshot)
            self.last_snapshot = snap
            await _call(self.on_collect, snap)
        finally:
            self.collect_cycles += 1

    async def _gc(self) -> None:
        try:
            dropped = await _in_thread(self.aggregator.gc)
            await _call(self.on_gc, dropped)
        finally:
            self.gc_cycles += 1


async def _call(fn: Callable[..., Any] | None, arg: Any) -> None:
    if fn is None:
        return
    r = fn(arg)
    if inspect.isawaitable(r):
        await r


async def _in_thread(fn: Callable[[], Any]) -> Any:
    """fn() in the default executor. If cancelled meanwhile, wait for the call to return
    before propagating: a stopped scheduler leaves no library call running (the caller may
    close the aggregator next). One call is short, so stopping stays prompt."""
    fut = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise
