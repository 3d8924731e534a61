"""The timeline's time axis: seconds to pixels, with long idle stretches cut short.

A deploy that waits at a manual gate for a day has seconds of steps on each side of the wait;
drawn to one scale its steps would vanish. A stretch with no step running, longer than a
minute and than a quarter of the rest, becomes a narrow break (drawn with its length).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

BREAK_PX = 40.0
MIN_BREAK_S = 60.0


@dataclass(frozen=True)
class Piece:
    """Seconds from t0 `start`..`end` drawn at pixels `left`..`right`; a break or to scale."""

    start: float
    end: float
    left: float
    right: float
    is_break: bool


class TimeAxis:
    def __init__(self, spans: Sequence[tuple[dt.datetime, dt.datetime]], left: float,
                 right: float) -> None:
        self.t0 = min(s for s, _ in spans)
        self.t1 = max(e for _, e in spans)
        busy = _merge([(self._s(s), self._s(e)) for s, e in spans])
        total = max(self._s(self.t1), 0.001)
        gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in itertools.pairwise(busy)
                if b_start - a_end > max(MIN_BREAK_S, 0.25 * (total - (b_start - a_end)))]
        scaled = total - sum(b - a for a, b in gaps)
        per_second = (right - left - BREAK_PX * len(gaps)) / max(scaled, 0.001)
        self.pieces: list[Piece] = []
        cursor_s, cursor_px = 0.0, left
        for start, end in gaps:
            width = (start - cursor_s) * per_second
            self.pieces.append(Piece(cursor_s, start, cursor_px, cursor_px + width, False))
            self.pieces.append(Piece(start, end, cursor_px + width, cursor_px + width + BREAK_PX, True))
            cursor_s, cursor_px = end, cursor_px + width + BREAK_PX
        self.pieces.append(Piece(cursor_s, total, cursor_px, right, False))
        self.span = total

    def _s(self, moment: dt.datetime) -> float:
        return (moment - self.t0).total_seconds()

    def x(self, moment: dt.datetime) -> float:
        """The pixel of a moment."""
        return self.px(self._s(moment))

    def px(self, seconds: float) -> float:
        for piece in self.pieces:
            if seconds <= piece.end or piece is self.pieces[-1]:
                share = (seconds - piece.start) / max(piece.end - piece.start, 1e-9)
                return piece.left + min(max(share, 0.0), 1.0) * (piece.right - piece.left)
        return self.pieces[-1].right  # pragma: no cover (the loop returns at the last piece)

    def ticks(self, count: int = 6) -> list[tuple[float, float]]:
        """(pixel, seconds from t0) of evenly spaced ticks, none inside a break."""
        left, right = self.pieces[0].left, self.pieces[-1].right
        out = []
        for i in range(count):
            px = left + (right - left) * i / (count - 1)
            piece = next(p for p in self.pieces if px <= p.right or p is self.pieces[-1])
            if piece.is_break:
                continue
            share = (px - piece.left) / max(piece.right - piece.left, 1e-9)
            out.append((px, piece.start + share * (piece.end - piece.start)))
        return out

    @property
    def breaks(self) -> list[Piece]:
        return [p for p in self.pieces if p.is_break]


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
