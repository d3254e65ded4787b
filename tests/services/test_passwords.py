"""Password scoring and hashing: off the event loop, a bounded number at a time, bounded work
per call, and no length that makes zxcvbn fail."""

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services import auth, passwords
from services.cpu import CpuLane
from services.errors import DomainError, ErrorCode
from services.passwords import (
    MAX_LENGTH,
    SCORED_LENGTH,
    check_password_async,
    score_password,
    strength,
)

# Characters zxcvbn reads as l33t, which make it try many readings of the text: a tenth of a
# second at 32 characters (16 of them mixed make 736 readings: a second; six at 72).
L33T = "1|7@4$5(0+3"
STRONG = "correct horse battery staple"


async def test_the_event_loop_runs_while_a_password_is_scored() -> None:
    # given a scoring of a slow kind of text under way (a tenth of a second alone)
    scoring = asyncio.create_task(score_password(L33T * 3))
    # when other coroutines want the loop meanwhile
    turns = 0
    while not scoring.done():
        await asyncio.sleep(0)
        turns += not scoring.done()
    # then they got it (on the loop, the scoring would have finished in its first turn)
    assert turns > 0
    assert (await scoring).score == 4


@pytest.mark.parametrize("lane", [passwords.SCORING, auth.HASHING], ids=["scoring", "hashing"])
async def test_a_lane_runs_at_most_its_limit_at_once(lane: CpuLane) -> None:
    # given more work than the lane's limit, each piece held until released
    lock, release, started = threading.Lock(), threading.Event(), threading.Semaphore(0)
    running = peak = done = 0

    def work() -> None:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        started.release()
        release.wait()
        with lock:
            running -= 1
            done += 1

    pieces = [asyncio.create_task(lane.run(work)) for _ in range(lane.limit + 3)]
    # when the lane is full
    for _ in range(lane.limit):
        # the timeout only keeps a broken lane from hanging the suite
        assert await asyncio.to_thread(started.acquire, timeout=60)
    full = running
    release.set()
    await asyncio.gather(*pieces)
    # then exactly `limit` ran at once, and everything ran in the end
    assert (full, peak, done) == (lane.limit, lane.limit, lane.limit + 3)


def test_scoring_is_one_at_a_time() -> None:
    # zxcvbn keeps the hints of the scoring in progress in a module-level dictionary
    assert passwords.SCORING.limit == 1


async def test_hints_of_one_scoring_do_not_leak_into_another() -> None:
    # when two scorings run at once, one with the password's own words as hints
    own, other = await asyncio.gather(
        score_password("acmeberlin1", user_inputs=["acmeberlin"]),
        score_password("acmeberlin1", user_inputs=["unrelated"]),
    )
    # then each saw only its own hints
    assert own.score < other.score


@pytest.mark.parametrize("length", [1, 8, 32, 33, 72, 73, 100, MAX_LENGTH, MAX_LENGTH + 1, 5000])
def test_any_length_is_scored_without_failing(length: int) -> None:
    rated = strength((L33T * 400)[:length])
    assert 0 <= rated.score <= 4
    assert rated.meets_policy is (8 <= length <= MAX_LENGTH and rated.score >= 3)
    if length > MAX_LENGTH:
        assert rated.suggestions[0] == f"Use at most {MAX_LENGTH} characters."


def test_only_the_scored_prefix_counts() -> None:
    # a weak start is weak whatever follows it beyond the scored characters
    weak_start = "a" * SCORED_LENGTH
    assert strength(weak_start + "Zq!9#xV2@mL7").score == strength(weak_start).score
    # and a hint longer than the scored text cannot be in it
    assert strength(STRONG, user_inputs=[STRONG + "!" * SCORED_LENGTH]).score == 4


@settings(max_examples=30, deadline=None)
@given(password=st.text(max_size=MAX_LENGTH + 20), hints=st.lists(st.text(max_size=40)))
def test_scoring_never_fails(password: str, hints: list[str]) -> None:
    rated = strength(password, user_inputs=hints)
    assert 0 <= rated.score <= 4


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Zq!9", ErrorCode.PASSWORD_TOO_SHORT),
        ("password1", ErrorCode.PASSWORD_TOO_WEAK),
        ("x" * (MAX_LENGTH + 1), ErrorCode.TOO_LONG),
        (L33T * 30, ErrorCode.TOO_LONG),
    ],
)
async def test_check_password_async_refuses(password: str, code: ErrorCode) -> None:
    with pytest.raises(DomainError) as refused:
        await check_password_async(password, field=["password"])
    assert (refused.value.code, refused.value.field) == (code, ["password"])


@pytest.mark.parametrize("length", [72, 73, 100, MAX_LENGTH])
async def test_long_passwords_are_accepted_and_hashed(length: int) -> None:
    password = (STRONG + " " + L33T * 20)[:length]
    assert await check_password_async(password, field=["password"]) == password
    stored = await auth.hash_password_async(password)
    assert await auth.verify_password_async(stored, password)
    assert not await auth.verify_password_async(stored, password[:-1] + "#")
