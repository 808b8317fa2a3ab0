"""Settings of one emulator instance (plain values; the CLI and the control API map onto them)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Seconds an operation takes when nothing else is configured (a real create_branch takes ~1-3 s).
DEFAULT_OPERATION_DURATION = 1.0


@dataclass
class EmulatorConfig:
    """What an emulator starts with; ``reset()`` returns to exactly this.

    ``api_keys`` are personal keys (all projects); ``project_scoped_keys`` maps a key to the one
    project it may see (the project is created at start, with that id, when it does not exist).
    ``deterministic`` seeds every generated id, password and key from ``seed`` and freezes the
    clock (it moves only through ``advance()``) unless ``manual_clock`` says otherwise.
    """

    # Keys stay out of reprs (logs, tracebacks).
    api_keys: list[str] = field(default_factory=list, repr=False)
    project_scoped_keys: dict[str, str] = field(default_factory=dict, repr=False)
    deterministic: bool = False
    seed: int = 0
    manual_clock: bool | None = None
    operation_duration: float = DEFAULT_OPERATION_DURATION
    operation_durations: dict[str, float] = field(default_factory=dict)
    rate_limits: bool = True
    lock_rule: bool = True
    #: Requests per minute per key (token bucket) and per second per key, route and method.
    rate_limit_per_minute: int = 700
    rate_limit_per_route_per_second: int = 40
    #: How often the background sweeper advances operations and deletes expired branches.
    sweep_interval: float = 1.0
    request_log_size: int = 50_000
    region_id: str = "aws-us-east-2"
    #: When set, every control-API request must carry it in ``X-Emulator-Control-Token`` (and then
    #: clients beyond loopback may use the control API). Unset: loopback clients only.
    control_token: str | None = field(default=None, repr=False)
    #: Host names (besides IP literals and localhost) the control API accepts in ``Host``.
    allowed_hosts: list[str] = field(default_factory=list)
    #: Largest request body any route accepts (413 above it, before the body is read).
    max_body_bytes: int = 1 << 20
    #: Seconds the clock starts ahead of real time (negative: behind), e.g. -2 days for a test
    #: whose project must have existed at a past data interval's end; ``advance()`` catches up.
    clock_start_offset: float = 0.0
    #: Manual snapshots a project may hold: the service allows 1 on the free plan and 100 on paid
    #: plans (the emulator's organizations are on a paid plan; pass 1 to emulate a free one).
    manual_snapshot_limit: int = 100

    @property
    def uses_manual_clock(self) -> bool:
        return self.deterministic if self.manual_clock is None else self.manual_clock
