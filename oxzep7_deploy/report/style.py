"""The one look of what the project draws: the deploy report's page and the bench plots.

Colours are hex strings, usable in CSS, SVG and matplotlib alike; bench/plot.py takes its
colours from here, so a green bar there and a green segment in a report mean the same: ours,
healthy, good.
"""

from __future__ import annotations

# what each colour stands for
GOOD = "#2e7d32"  # healthy, succeeded, ours
PREPARED = "#1565c0"  # interpreter and release prepared, nothing live changed
SWITCHED = "#f9a825"  # `current` switched, not yet confirmed healthy
ROLLED_BACK = "#6a1b9a"  # put back on the release it ran before
FAILED = "#c62828"  # a failure, a missed goal
NEUTRAL = "#757575"  # locks, the other side of a comparison
ALTERNATIVE = "#00838f"  # a third series (e.g. a hand-tuned peer)
MUTED = "#9e9d24"  # a variant of ours (e.g. audit with a spec)
INK = "#212121"
FAINT = "#e0e0e0"
PAPER = "#ffffff"

# a step of the engine -> the phase it belongs to on a host's timeline
PHASE_OF_STEP = {
    "install": "prepared",
    "prepare": "prepared",
    "preview": "prepared",  # the new release beside the old, before the switch
    "lock": "lock",
    "unlock": "lock",
    "switch": "switched",
    "confirm": "healthy",
    "bake": "healthy",
    "rollback": "rolled back",
}
PHASE_COLOUR = {
    "prepared": PREPARED,
    "switched": SWITCHED,
    "healthy": GOOD,
    "rolled back": ROLLED_BACK,
    "failed": FAILED,
    "lock": FAINT,
}
# a gate or wave line on the timeline
GATE_COLOUR = {"wave": INK, "paused": SWITCHED, "promoted": GOOD, "aborted": FAILED}

FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"  # what matplotlib ships, then the rest
MONO_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
FONT_SIZE = 10  # points: plot text; the page's body is this plus 3 (screens sit further away)
