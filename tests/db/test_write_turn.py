"""SQLite's writers of one process take turns, in order, before they ask SQLite for its write
lock (issue 17: no lock storms); PostgreSQL's do not wait for each other (they lock rows)."""

import asyncio
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import between_processes, create_sessionmaker, lock_file, write_turn


async def test_writers_take_turns_on_sqlite_only(engine: AsyncEngine, backend: str) -> None:
    sessions = create_sessionmaker(engine)
    entered: list[int] = []
    left: list[int] = []
    release = [asyncio.Event() for _ in range(3)]

    async def writer(n: int) -> None:
        async with sessions() as session, write_turn(session):
            entered.append(n)
            await release[n].wait()
            left.append(n)

    # given three changes that start together, the first holding on
    tasks = [asyncio.create_task(writer(n)) for n in range(3)]
    for _ in range(10):  # let every task run as far as it can
        await asyncio.sleep(0)
    # then on SQLite only the first is writing; on PostgreSQL all three are
    assert entered == ([0] if backend == "sqlite" else [0, 1, 2])
    # when the last one and then the first one finish
    release[2].set()
    release[0].set()
    for _ in range(10):
        await asyncio.sleep(0)
    # then on SQLite the second goes next (in the order they came), the third still waiting
    assert entered == ([0, 1] if backend == "sqlite" else [0, 1, 2])
    release[1].set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2]
    assert left == ([0, 1, 2] if backend == "sqlite" else [2, 0, 1])


# Another process: takes the lock file, says so, lets go when told.
HOLDER = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
fcntl.flock(descriptor, fcntl.LOCK_UN)
"""


async def holder(path: str) -> asyncio.subprocess.Process:
    """Another process holding the lock file at `path` until told to let go."""
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, path, stdin=PIPE, stdout=PIPE
    )
    assert other.stdout is not None
    assert await other.stdout.readline() == b"held\n"
    return other


async def let_go(other: asyncio.subprocess.Process) -> None:
    assert other.stdin is not None
    other.stdin.write(b"release\n")
    await other.stdin.drain()
    await asyncio.wait_for(other.wait(), timeout=30)


async def test_the_processes_of_one_server_take_turns(tmp_path: Path) -> None:
    # given this process's lock file of a database in a file (none for one in memory)
    assert lock_file(":memory:") is None
    database = str(tmp_path / "turns.db")
    descriptor = lock_file(database)
    assert descriptor is not None
    assert lock_file(database) == descriptor
    entered = asyncio.Event()

    async def writer() -> None:
        async with between_processes(descriptor):
            entered.set()

    # when another process holds it
    other = await holder(f"{database}.write-turn")
    task = asyncio.create_task(writer())
    for _ in range(20):
        await asyncio.sleep(0)
    # then a writer here waits (blocked in a thread, not polling SQLite's lock)
    assert not entered.is_set()
    # and goes as soon as the other lets go
    await let_go(other)
    await asyncio.wait_for(task, timeout=30)
    assert entered.is_set()
    # and a writer cancelled while it waits leaves the lock free for the next
    other = await holder(f"{database}.write-turn")
    entered.clear()
    waiting = asyncio.create_task(writer())
    for _ in range(20):
        await asyncio.sleep(0)
    waiting.cancel()
    await let_go(other)
    await asyncio.wait_for(writer(), timeout=30)
    assert entered.is_set()
