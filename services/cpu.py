"""CPU-heavy work (scoring and hashing passwords) off the event loop, a few at a time."""

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class CpuLane:
    """Runs blocking functions in at most `limit` threads of its own (per process): the event
    loop goes on serving other requests meanwhile, and more work than that waits its turn here
    instead of piling up on the CPU (or, for argon2, in memory).

    A thread frees the loop entirely only for code that releases the GIL (argon2-cffi does);
    pure Python work (zxcvbn) shares the GIL with the loop, which still gets its turn every
    few milliseconds (`sys.getswitchinterval`) instead of waiting for the whole computation.
    Work whose caller gave up before it started is dropped.
    """

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        # threads start on first use, so importing this creates none
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=name)

    async def run(self, work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(*args, **kwargs)` in one of the lane's threads, with the caller's context
        variables (log fields)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
