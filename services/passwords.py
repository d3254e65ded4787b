"""Password policy: long enough, and hard enough to guess (zxcvbn's 0-4 score)."""

from collections.abc import Sequence
from dataclasses import dataclass

from zxcvbn import zxcvbn

from services.errors import DomainError, ErrorCode
from services.validation import storable

MIN_LENGTH = 8
MAX_LENGTH = 256  # argon2 hashes any length without truncating; this only bounds the work
SCORED_PREFIX = 72  # zxcvbn raises ValueError on longer passwords (its cost grows with length)
DEFAULT_MIN_SCORE = 3  # "safely unguessable": resists an offline attack on slow hashes


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
    """Score 0-4 and advice; words in `user_inputs` (login, name, e-mail) count as guessable."""
    if not password:  # zxcvbn fails on an empty string
        return Strength(0, False, None, [f"Use at least {MIN_LENGTH} characters."], "instant")
    result = zxcvbn(password[:SCORED_PREFIX], user_inputs=[i for i in user_inputs if i])
    score = int(result["score"])
    feedback = result["feedback"]
    too_short = len(password) < MIN_LENGTH
    suggestions = list(feedback.get("suggestions") or [])
    if too_short:
        suggestions.insert(0, f"Use at least {MIN_LENGTH} characters.")
    return Strength(
        score=score,
        meets_policy=not too_short and len(password) <= MAX_LENGTH and score >= min_score,
        warning=feedback.get("warning") or None,
        suggestions=suggestions,
        crack_time=str(result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]),
    )


def check_password(
    password: str,
    *,
    field: list[str],
    user_inputs: Sequence[str] = (),
    min_score: int = DEFAULT_MIN_SCORE,
) -> str:
    """The password if the policy accepts it; why not otherwise."""
    if len(password) < MIN_LENGTH:
        raise DomainError(
            ErrorCode.PASSWORD_TOO_SHORT, f"Use at least {MIN_LENGTH} characters", field
        )
    if len(password) > MAX_LENGTH:
        raise DomainError(ErrorCode.TOO_LONG, f"At most {MAX_LENGTH} characters", field)
    storable(password, field=field)  # hashed as UTF-8, which a lone surrogate is not
    rated = strength(password, user_inputs=user_inputs, min_score=min_score)
    if not rated.meets_policy:
        advice = rated.warning or (rated.suggestions[0] if rated.suggestions else "")
        message = f"Too easy to guess (strength {rated.score} of 4, {min_score} needed)."
        raise DomainError(ErrorCode.PASSWORD_TOO_WEAK, f"{message} {advice}".strip(), field)
    return password
