"""What each host says about an application: releases, current/previous/last good, lock, dead-man."""

from oxzep7_deploy.state.host import (
    DeadmanRecord,
    HistoryEvent,
    HostState,
    InterpreterInfo,
    LockRecord,
    ReleaseRecord,
    ReleaseStatus,
    SnapshotRecord,
    StateFormatError,
    parse_host_state,
    parse_lock,
    unreachable_state,
    unreadable_state,
)

__all__ = [
    "DeadmanRecord",
    "HistoryEvent",
    "HostState",
    "InterpreterInfo",
    "LockRecord",
    "ReleaseRecord",
    "ReleaseStatus",
    "SnapshotRecord",
    "StateFormatError",
    "parse_host_state",
    "parse_lock",
    "unreachable_state",
    "unreadable_state",
]
