"""SIGTERM stops a service even when the event loop's self-pipe is full (common.server.stop_signals)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from common.server import stop_signals


def test_sigterm_is_not_lost_when_the_loops_self_pipe_is_full() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        with stop_signals(stop):
            # The loop is blocked while a thread schedules thousands of callbacks: each writes a
            # byte into the self-pipe, far more than it holds (asyncio's own handlers lose the
            # signal from here on).
            spammer = threading.Thread(target=lambda: [loop.call_soon_threadsafe(lambda: None) for _ in range(5000)])
            spammer.start()
            spammer.join()
            os.kill(os.getpid(), signal.SIGTERM)
            try:
                await asyncio.wait_for(stop.wait(), timeout=5)
            except TimeoutError:
                return False
            return True

    before = signal.getsignal(signal.SIGTERM)
    assert asyncio.run(main()), "SIGTERM was lost"
    assert signal.getsignal(signal.SIGTERM) is before
