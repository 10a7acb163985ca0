"""An adapter's own asyncio event loop, on one thread, shared by all its calls.

The SDKs' async clients run here, so one connection pool serves every session that
uses the provider, and a cancelled session stops its call at once: the token's
callback cancels the call's task on this loop, which interrupts whatever the call
awaits (connecting, waiting for headers, reading the stream) and lets the call close
its stream before it returns.

Guarantees:
- the loop thread is started by the first call, not at construction or import;
- :meth:`LoopThread.close` runs ``on_close`` on the loop, cancels the calls still in
  flight (no caller is left waiting), stops the loop and joins the thread; a later
  call starts a new loop (a closed provider may be used again, e.g. by the next
  runtime);
- the calling thread (a session actor's) only waits: it never touches the loop's
  objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sessiontree._cancellation import CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`LoopThread.close` waits for the loop to wind down."""


class LoopThread:
    def __init__(self, name: str, on_close: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        self.name = name
        self._on_close = on_close
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.close()

                thread = threading.Thread(target=serve, name=self.name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, make: Callable[[], Awaitable[T]], cancel: CancelToken) -> T:
        """Run ``make()`` on the loop and return its result. When ``cancel`` fires, the
        coroutine's task is cancelled: the coroutine should catch
        ``asyncio.CancelledError``, close what it opened and return what it has."""
        loop = self._ensure()
        task: list[asyncio.Task[T]] = []

        async def main() -> T:
            current = asyncio.current_task()
            assert current is not None
            task.append(current)
            return await make()

        future = asyncio.run_coroutine_threadsafe(main(), loop)

        def on_cancel() -> None:
            loop.call_soon_threadsafe(lambda: task[0].cancel() if task else future.cancel())

        remove = cancel.add_callback(on_cancel)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            cancel.raise_if_cancelled()
            raise
        finally:
            remove()

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._wind_down(), loop).result(CLOSE_TIMEOUT)
        except Exception:
            log.exception("%s: closing failed", self.name)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT)

    async def _wind_down(self) -> None:
        """Run ``on_close`` (which closes connections gracefully), then cancel whatever
        is still in flight, so no caller waits on a stopped loop."""
        if self._on_close is not None:
            try:
                await asyncio.wait_for(self._on_close(), CLOSE_TIMEOUT)
            except Exception:
                log.exception("%s: on_close failed", self.name)
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
