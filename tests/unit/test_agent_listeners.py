"""collectors.listeners.put_until_stopped: how the TCP syslog and journald inputs hand a message on."""

from __future__ import annotations

import queue
import threading
import time

from collectors.listeners import Message, put_until_stopped


def test_put_waits_while_the_queue_is_full_and_gives_up_only_when_stopped() -> None:
    out: queue.Queue[Message] = queue.Queue(maxsize=1)
    stop = threading.Event()
    first, second, third = Message("a", 0.0), Message("b", 0.0), Message("c", 0.0)
    put_until_stopped(out, first, stop)
    waiting = threading.Thread(target=put_until_stopped, args=(out, second, stop))
    waiting.start()
    time.sleep(0.7)  # longer than one put timeout: still waiting, not dropped
    assert waiting.is_alive()
    assert out.get_nowait() is first
    waiting.join(2)
    assert not waiting.is_alive() and out.get_nowait() is second
    out.put_nowait(first)
    stop.set()
    started = time.monotonic()
    put_until_stopped(out, third, stop)  # full and stopped: returns without it
    assert time.monotonic() - started < 0.1 and out.get_nowait() is first and out.empty()
