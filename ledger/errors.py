"""The ledger's refusals: each says what and why in words a person can act on, and carries the numbers.

A refusal is a decision about the ledger's state (not enough credits, a hold already resolved...): it is
stored with its idempotency key, so a retry with that key is refused again the same way. Each class can be
rebuilt from its `details`, which is how a stored refusal is raised again.
"""

from keter.errors import DomainError


class LedgerError(DomainError):
    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None, **details):
        super().__init__(message, field=field)
        self.details = details


class InvalidCredits(LedgerError):
    """Malformed input (not a whole number, zero, negative, absurdly large): refused before anything else."""

    code = "invalid_credits"
    field = "credits"

    def __init__(self, message: str):
        super().__init__(message)


class InvalidInput(LedgerError):
    """Any other malformed input (a missing reason, an expiry in the past...), named by its field."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str):
        super().__init__(message, field=field)


class InsufficientCredits(LedgerError):
    code = "insufficient_credits"
    field = "credits"

    def __init__(self, *, available: int, needed: int):
        super().__init__(
            f"Not enough credits: {available:,} available, {needed:,} needed",
            available=available,
            needed=needed,
        )
        self.available = available
        self.needed = needed


class HoldAlreadyResolved(LedgerError):
    code = "hold_already_resolved"

    def __init__(self, *, hold_id: int, status: str):
        super().__init__(
            f"Hold #{hold_id} is already {status}: it cannot change again", hold_id=hold_id, status=status
        )
        self.hold_id = hold_id
        self.status = status


class HoldExceeded(LedgerError):
    """A capture or release asked for more than the hold still keeps: captures never exceed the hold."""

    code = "hold_exceeded"
    field = "credits"

    def __init__(self, *, hold_id: int, open_credits: int, requested: int):
        super().__init__(
            f"Hold #{hold_id} keeps {open_credits:,} credits: it cannot give {requested:,}",
            hold_id=hold_id,
            open_credits=open_credits,
            requested=requested,
        )
        self.open_credits = open_credits
        self.requested = requested


class RefundExceedsCaptured(LedgerError):
    code = "refund_exceeds_captured"
    field = "credits"

    def __init__(self, *, hold_id: int, refundable: int, requested: int):
        super().__init__(
            f"Hold #{hold_id} has {refundable:,} captured credits left to refund, not {requested:,}",
            hold_id=hold_id,
            refundable=refundable,
            requested=requested,
        )
        self.refundable = refundable
        self.requested = requested


class TopUpTooSmall(LedgerError):
    code = "top_up_too_small"
    field = "credits"

    def __init__(self, *, minimum: int, requested: int):
        super().__init__(
            f"Credits are bought in packs of at least {minimum:,}", minimum=minimum, requested=requested
        )


class IdempotencyConflict(LedgerError):
    """The key was used before for a different request: the key was derived wrongly, or the input changed."""

    code = "idempotency_conflict"

    def __init__(self, *, key: str):
        super().__init__(
            f"The key {key!r} was already used for a different request; use a new key for a new request",
            key=key,
        )
        self.key = key


# Refusals that are stored with their key and raised again on a retry (malformed input never is).
STORED_REFUSALS: dict[str, type[LedgerError]] = {
    cls.code: cls for cls in (InsufficientCredits, HoldAlreadyResolved, HoldExceeded, RefundExceedsCaptured)
}


def refusal_from(code: str, details: dict) -> LedgerError:
    return STORED_REFUSALS[code](**details)
