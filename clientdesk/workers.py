"""`clientdesk serve --workers N`: one process accepts the connections and hands them to the
workers, so that each worker gets its share.

With one listening socket shared by the workers (uvicorn's own multi-process mode), whichever
worker wakes first accepts every connection waiting — a burst of 32 keep-alive connections
split 23/9 or 0/32 in the bench, and the worker with the most answered each request last:
p99 at 32 connections was set by the busier worker. Here the parent accepts and sends each
connection's descriptor over one Unix socket (SCM_RIGHTS) that all the workers read; a worker
takes one connection per turn of its event loop, so an idle worker takes the next one and a
busy one leaves it (node:cluster's round robin does the same job in its primary process).

The parent restarts a worker that dies, and on SIGTERM or SIGINT stops accepting (new
connections are refused), tells the workers to stop, and waits for them: each finishes the
requests in flight (uvicorn's graceful shutdown). A worker whose parent is gone stops too.
"""

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = structlog.get_logger("clientdesk.workers")

CONNECTION = b"c"  # the message that carries one descriptor


def hand_out(listener: socket.socket, outboxes: list[socket.socket]) -> None:
    """Accept connections until the listener is shut, and pass each to the next worker."""
    for outbox in itertools.cycle(outboxes):
        try:
            connection, _ = listener.accept()
        except OSError:  # shut down: the server is stopping
            return
        with connection:  # the worker holds its own copy once sent
            try:
                socket.send_fds(outbox, [CONNECTION], [connection.fileno()])
            except OSError:  # the parent is stopping
                return


class HandedServer(uvicorn.Server):
    """A worker: uvicorn's server, serving the connections the parent hands it rather than
    listening itself."""

    def __init__(self, config: uvicorn.Config, inbox: socket.socket) -> None:
        super().__init__(config)
        self.inbox = inbox
        self.opening: set[asyncio.Task[Any]] = set()  # held until done (asyncio keeps none)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's startup, and no listener of its own
        self.inbox.setblocking(False)
        asyncio.get_running_loop().add_reader(self.inbox.fileno(), self._take)

    def _protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    def _take(self) -> None:
        """The next connection the parent handed this worker."""
        try:
            message, descriptors, _, _ = socket.recv_fds(self.inbox, len(CONNECTION), 1)
        except BlockingIOError:
            return
        if not message:  # the parent is gone: stop
            asyncio.get_running_loop().remove_reader(self.inbox.fileno())
            self.should_exit = True
            return
        loop = asyncio.get_running_loop()
        for descriptor in descriptors:
            connection = socket.socket(fileno=descriptor)
            task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
            self.opening.add(task)
            task.add_done_callback(self.opening.discard)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed already
            asyncio.get_running_loop().remove_reader(self.inbox.fileno())
        await super().shutdown(sockets)


def _work(options: dict[str, Any], inbox: socket.socket, setup: Callable[[], None]) -> None:
    """A worker process's body."""
    setup()
    HandedServer(uvicorn.Config(**options), inbox).run()


def serve_workers(
    options: dict[str, Any], *, host: str, port: int, workers: int, setup: Callable[[], None]
) -> int:
    """Serve on host:port with `workers` processes running uvicorn with `options`, each
    calling `setup` first (logging); returns the exit status."""
    listener = socket.create_server((host, port), backlog=2048)
    # one channel per worker; a worker's replacement reads the same one
    channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(workers)]
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(n: int) -> BaseProcess:
        inbox = channels[n][0]
        process = context.Process(target=_work, args=(options, inbox, setup), name=f"worker-{n}")
        process.start()
        return process

    def stopping(signum: int, _: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopping)
    processes = [start(n) for n in range(workers)]
    log.info(f"Clientdesk running on http://{host}:{port} with {workers} workers", pid=os.getpid())
    outboxes = [outbox for _, outbox in channels]
    threading.Thread(target=hand_out, args=(listener, outboxes), daemon=True).start()
    status = 0
    while not stop.wait(0.5):
        for n, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:  # would fail the same way again
                log.error("worker_failed_to_start", pid=process.pid)
                status = STARTUP_FAILURE
                stop.set()
                break
            log.warning("worker_died", pid=process.pid, exitcode=process.exitcode)
            processes[n] = start(n)
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; new ones are refused
    listener.close()
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join()
    for inbox, outbox in channels:
        inbox.close()
        outbox.close()
    return status
