"""The emulator's notion of "now": real time, or a manual clock stepped by ``advance()``."""

from __future__ import annotations

import time
from datetime import datetime

from jambo_emulator.state.errors import bad_request

#: One advance moves at most ten years; the clock runs at most a hundred years ahead (timestamps
#: stay printable, and ``seconds`` of 1e308 is a typo, not a test).
MAX_ADVANCE = 10 * 365 * 86400
MAX_OFFSET = 100 * 365 * 86400


class Clock:
    """Epoch seconds. A manual clock stands still until advanced; a real clock can also be advanced.

    Advancing a real clock adds an offset, so tests can jump over an operation's duration or a
    branch's expiry without sleeping.
    """

    def __init__(self, manual: bool, start_offset: float = 0.0) -> None:
        """``start_offset``: seconds the clock starts ahead of (or, negative, behind) real time, so
        a test can have projects that existed before a past moment (a backfill's data interval)."""
        self.manual = manual
        self._offset = start_offset
        # A manual clock starts at the real time (whole seconds) so that client-computed
        # timestamps such as ``expires_at = now + 1h`` stay valid against it.
        self._frozen = float(int(time.time())) if manual else 0.0
        #: (wall time of the change, offset from then on); the first entry is the clock's start.
        self._offsets: list[tuple[float, float]] = [(time.time(), start_offset)]

    def now(self) -> float:
        if self.manual:
            return self._frozen + self._offset
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if not 0 <= seconds <= MAX_ADVANCE:  # also refuses NaN
            raise ValueError(f"seconds must be between 0 and {MAX_ADVANCE} (ten years), got {seconds}")
        if self._offset + seconds > MAX_OFFSET:
            raise ValueError(f"the clock may run at most {MAX_OFFSET} seconds (a hundred years) ahead")
        self._offset += seconds
        self._offsets.append((time.time(), self._offset))

    def wall_time(self, ts: float) -> float:
        """The last wall-clock moment at which this clock read at most ``ts``: what "the data as
        it was at ``ts``" means for real data written in wall-clock time (a manual clock stands
        still between advances, so everything written until the advance past ``ts`` counts)."""
        now = time.time()
        answer = self._offsets[0][0]
        for i, (since, offset) in enumerate(self._offsets):
            until = self._offsets[i + 1][0] if i + 1 < len(self._offsets) else now
            reading_at_since = (self._frozen if self.manual else since) + offset
            if reading_at_since > ts:
                break
            answer = until if self.manual else min(ts - offset, until)
        return answer


def iso(ts: float) -> str:
    """RFC 3339 in UTC with second precision, as the service writes timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_timestamp(value: str, field_name: str) -> float:
    """RFC 3339 with a time zone (``Z`` or an offset) -> epoch seconds, or a 400 naming the field."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"invalid {field_name}: {value!r} is not an RFC 3339 timestamp (e.g. 2026-01-01T00:00:00Z)"
        ) from None
    if parsed.tzinfo is None or "T" not in text.upper():
        raise bad_request(f"invalid {field_name}: {value!r} must be RFC 3339 with a time zone (Z or +hh:mm)")
    return parsed.timestamp()
