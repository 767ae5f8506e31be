"""Progress bars for long work: recsys's progress callback drawn as an st.progress bar."""

from __future__ import annotations

import time

import streamlit as st


def format_seconds(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1 h 5 min' (rounded: an estimate, not a promise)."""
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5.0)) * 5)} s"
    if seconds < 3600:
        return f"about {int(round(seconds / 60))} min"
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    return f"about {hours} h {minutes} min"


class StreamlitProgress:
    """Adapter from recsys's `progress(done, total, message)` callback to an st.progress bar.

    - The bar never goes backwards. Work that reports in several phases (calibration, then
      extraction; one total, then another) continues from where the bar is: a new phase (its
      `total` changes, or `done` falls back) fills the rest of the bar.
    - It shows the time left, estimated from the current phase's pace once it has run a few
      seconds, and the time spent.
    - It redraws at most every `min_interval` seconds (and always at the end), so a callback fired
      per image does not flood the browser with messages.
    """

    def __init__(self, label: str = "Working…", min_interval: float = 0.2, clock=time.monotonic):
        self.label = label
        self.bar = st.progress(0.0, text=label)
        self.min_interval = min_interval
        self.clock = clock
        self.calls = 0
        self.shown = 0.0  # fraction drawn so far (never decreases)
        self._started = clock()
        self._last_draw = -float("inf")
        self._phase = None  # (total, start time, base fraction, last done)

    def fraction(self, done: int, total: int) -> float:
        """The overall fraction for this report (phases chained, monotonic)."""
        now = self.clock()
        own = min(max(done / total, 0.0), 1.0) if total else 0.0
        if self._phase is None or total != self._phase[0] or done < self._phase[3]:
            self._phase = (total, now, self.shown, done)
        total_, start, base, _ = self._phase
        self._phase = (total_, start, base, done)
        return max(self.shown, base + (1.0 - base) * own)

    def time_left(self, done: int, total: int) -> float | None:
        """Seconds left in the current phase at its pace so far (None until it can be told)."""
        if self._phase is None or not total or done <= 0 or done >= total:
            return None
        elapsed = self.clock() - self._phase[1]
        share = done / total
        if elapsed < 2.0 or share < 0.02:
            return None
        return elapsed * (1.0 - share) / share

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.calls += 1
        overall = self.fraction(done, total)
        finished = bool(total) and done >= total
        now = self.clock()
        if not finished and now - self._last_draw < self.min_interval:
            self.shown = overall
            return
        self._last_draw = now
        self.shown = overall
        left = self.time_left(done, total)
        text = f"{self.label} {done:,}/{total:,}" + (f" — {message}" if message else "")
        if left is not None:
            text += f" · {format_seconds(left)} left"
        self.bar.progress(overall, text=text)

    def empty(self) -> None:
        self.bar.empty()
