"""Password policy: long enough, not too long, and hard enough to guess (zxcvbn's 0-4 score).

Scoring is CPU work on the order of a second for some strings: async code awaits
`score_password` / `check_password_async`, which run it off the event loop, one at a time per
process. `strength` and `check_password` are the same work, blocking, for the CLI and tests.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from zxcvbn import zxcvbn

from services.cpu import CpuLane
from services.errors import DomainError, ErrorCode
from services.validation import storable

MIN_LENGTH = 8
# argon2 hashes any length without truncating; a bound keeps every request's work bounded and
# still leaves room for any password manager's output.
MAX_LENGTH = 256
# zxcvbn's time grows with the square of the length, times up to 736 l33t readings when the
# text mixes many of `!$%(+0-9<@[{|` (measured: 10 ms for 32 random letters, 0.13 s for 32
# characters of "1|7@4$5(0+3", 1.1-1.5 s for the worst 32; 6 s for the worst 72), and it
# refuses more than 72 characters. Only this prefix is scored: a longer password is at least as
# hard to guess as its beginning, so the score never flatters it.
SCORED_LENGTH = 32
DEFAULT_MIN_SCORE = 3  # "safely unguessable": resists an offline attack on slow hashes

# zxcvbn keeps the words of `user_inputs` in a module-level dictionary while it scores: two
# scorings at once in one process would see each other's words. So one at a time.
SCORING = CpuLane("zxcvbn", 1)


@dataclass(frozen=True, slots=True)
class Strength:
    """What a strength bar shows."""

    score: int
    meets_policy: bool
    warning: str | None
    suggestions: list[str]
    crack_time: str


def strength(
    password: str, *, user_inputs: Sequence[str] = (), min_score: int = DEFAULT_MIN_SCORE
) -> Strength:
    """Score 0-4 and advice for the first SCORED_LENGTH characters; words in `user_inputs`
    (login, name, e-mail) count as guessable. Blocking: async code awaits `score_password`."""
    if not password:  # zxcvbn fails on an empty string
        return Strength(0, False, None, [f"Use at least {MIN_LENGTH} characters."], "instant")
    scored = password[:SCORED_LENGTH]
    # a word longer than the scored text cannot be found in it
    words = [word for word in user_inputs if word and len(word) <= len(scored)]
    result = zxcvbn(scored, user_inputs=words)
    score = int(result["score"])
    feedback = result["feedback"]
    suggestions = list(feedback.get("suggestions") or [])
    if len(password) < MIN_LENGTH:
        suggestions.insert(0, f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        suggestions.insert(0, f"Use at most {MAX_LENGTH} characters.")
    return Strength(
        score=score,
        meets_policy=MIN_LENGTH <= len(password) <= MAX_LENGTH and score >= min_score,
        warning=feedback.get("warning") or None,
        suggestions=suggestions,
        crack_time=str(result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]),
    )


async def score_password(
    password: str, *, user_inputs: Sequence[str] = (), min_score: int = DEFAULT_MIN_SCORE
) -> Strength:
    """`strength` off the event loop, one scoring at a time per process."""
    return await SCORING.run(strength, password, user_inputs=list(user_inputs), min_score=min_score)


def check_length(password: str, *, field: list[str]) -> None:
    """Refuse a password shorter than MIN_LENGTH or longer than MAX_LENGTH."""
    if len(password) < MIN_LENGTH:
        raise DomainError(
            ErrorCode.PASSWORD_TOO_SHORT, f"Use at least {MIN_LENGTH} characters", field
        )
    if len(password) > MAX_LENGTH:
        raise DomainError(ErrorCode.TOO_LONG, f"At most {MAX_LENGTH} characters", field)
    storable(password, field=field)  # hashed as UTF-8, which a lone surrogate is not


def _judged(rated: Strength, *, field: list[str], min_score: int) -> None:
    if not rated.meets_policy:
        advice = rated.warning or (rated.suggestions[0] if rated.suggestions else "")
        message = f"Too easy to guess (strength {rated.score} of 4, {min_score} needed)."
        raise DomainError(ErrorCode.PASSWORD_TOO_WEAK, f"{message} {advice}".strip(), field)


def check_password(
    password: str,
    *,
    field: list[str],
    user_inputs: Sequence[str] = (),
    min_score: int = DEFAULT_MIN_SCORE,
) -> str:
    """The password if the policy accepts it; why not otherwise. Blocking: async code awaits
    `check_password_async`."""
    check_length(password, field=field)
    rated = strength(password, user_inputs=user_inputs, min_score=min_score)
    _judged(rated, field=field, min_score=min_score)
    return password


async def check_password_async(
    password: str,
    *,
    field: list[str],
    user_inputs: Sequence[str] = (),
    min_score: int = DEFAULT_MIN_SCORE,
) -> str:
    """`check_password` with the scoring off the event loop (the length is checked first)."""
    check_length(password, field=field)
    rated = await score_password(password, user_inputs=user_inputs, min_score=min_score)
    _judged(rated, field=field, min_score=min_score)
    return password
