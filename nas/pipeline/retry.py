"""Which errors are worth retrying: a lost database connection or a crashed worker, not a bad spec."""

from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, OperationalError

# Ray's errors by name, so that the pipeline does not import Ray.
_TRANSIENT_NAMES = {
    "WorkerCrashedError",
    "NodeDiedError",
    "OwnerDiedError",
    "RaySystemError",
    "ObjectLostError",
}


def is_transient(exc: BaseException) -> bool:
    """True for errors a later attempt can get past (anywhere in the ``__cause__`` chain)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OperationalError | DisconnectionError | ConnectionError | TimeoutError):
            return True
        if type(cur).__name__ in _TRANSIENT_NAMES:
            return True
        cur = cur.__cause__
    return False
