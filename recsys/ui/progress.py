"""Progress bars for long work: recsys's progress callback drawn as an st.progress bar."""

from __future__ import annotations

import time

import streamlit as st


class StreamlitProgress:
    """Adapter from recsys's `progress(done, total, message)` callback to an st.progress bar.

    Redraws at most every `min_interval` seconds (and always at the end) so that a callback fired
    per image does not flood the browser with messages.
    """

    def __init__(self, label: str = "Working…", min_interval: float = 0.2):
        self.label = label
        self.bar = st.progress(0.0, text=label)
        self.min_interval = min_interval
        self._last = 0.0
        self.calls = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.calls += 1
        now = time.monotonic()
        finished = total and done >= total
        if not finished and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
        text = f"{self.label} {done:,}/{total:,}" + (f" — {message}" if message else "")
        self.bar.progress(fraction, text=text)

    def empty(self) -> None:
        self.bar.empty()
