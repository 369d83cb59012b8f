"""A kernel-like workqueue: one worker thread per fake device, started lazily.

``queue_work(work)`` behaves like the kernel's: a work item that is already
pending is not queued twice (it returns False); a work item that is running may
be queued again and then runs once more after the current run.  ``settle()``
waits until nothing is pending or running, which is how tests wait for the
rebind worker.  ``shutdown()`` drops pending work and joins the thread, so no
thread outlives :meth:`FakeBackend.shutdown`.

Lock discipline: the workqueue's own condition variable is never held while a
work function runs; work functions take the device lock themselves.  Callers
may queue work while holding the device lock (the kernel queues the rebind
worker under vm->lock too): queueing only takes the short internal lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("xeclient.backends.fake.workqueue")


class Work:
    """``struct work_struct``: a function and its pending bit."""

    def __init__(self, func: Callable[[], None], name: str = "work") -> None:
        self.func = func
        self.name = name
        self.pending = False

    def __repr__(self) -> str:
        return f"<Work {self.name} pending={self.pending}>"


class Workqueue:
    """An ordered workqueue served by one lazily started thread."""

    def __init__(self, name: str = "xe-fake-wq") -> None:
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Work] = deque()
        self._running: Work | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: runs completed, for tests
        self.completed = 0

    def queue_work(self, work: Work) -> bool:
        """Queue ``work``; False if it was already pending or the queue is shut down."""
        with self._cond:
            if self._stopped or work.pending:
                return False
            work.pending = True
            self._queue.append(work)
            if self._thread is None:
                self._thread = threading.Thread(target=self._worker, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def _worker(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                work = self._queue.popleft()
                work.pending = False
                self._running = work
            try:
                work.func()
            except Exception:  # a bug in the model must not kill the worker thread
                log.exception("work %s raised", work.name)
            finally:
                with self._cond:
                    self._running = None
                    self.completed += 1
                    self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and self._running is None

    def settle(self, timeout: float) -> bool:
        """Wait until no work is pending or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running is not None:
                if self._stopped:
                    return not self._queue and self._running is None
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Drop pending work, let a running item finish, and join the thread."""
        with self._cond:
            self._stopped = True
            for work in self._queue:
                work.pending = False
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread
