"""The progress-callback contract shared by long-running work: `progress(done, total, message)`.

The Streamlit pages pass an adapter to st.progress (recsys.ui.StreamlitProgress), the CLI one to
tqdm (recsys.cli_common.tqdm_progress / progress_bar); library code calls whichever it was given.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, message: str = "") -> None:
    """The default callback: report nothing."""
