"""Every case of the generated bad-input corpus (tests/bad_inputs.py) is handled cleanly: one
`error: …` line naming the file (and line), a per-item failure with its reason, or, for inputs
that are valid after all, a correct reading. Never a traceback, never silent garbage."""

from __future__ import annotations

import pytest
from bad_inputs import all_cases, run_case

CASES = all_cases()


def test_the_corpus_is_large_and_covers_every_group():
    groups = {case.group for case in CASES}
    assert len(CASES) >= 100 and len({case.id for case in CASES}) == len(CASES)
    assert groups == {"ml-100k", "ml-1m", "csv", "image", "video", "archive", "cli", "split", "env"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_handled_cleanly(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.handled, result.detail


@pytest.mark.parametrize("case_id", ["u.data-user-2^70", "u.item-stray-latin1-in-utf8", "u.user-zero-bytes"])
def test_pages_show_the_cli_message_without_a_traceback(case_id, tmp_path):
    """The dashboard shows the same one-line message as the CLI (no traceback) for a broken dataset."""
    from bad_inputs import run_cli
    from streamlit.testing.v1 import AppTest

    from recsys import ui
    from recsys.config import PROJECT_ROOT

    case = next(case for case in CASES if case.id == case_id)
    action = case.make(tmp_path)
    _, _, err = run_cli(action.argv)
    message = next(line for line in err.splitlines() if line.startswith("error: ")).removeprefix("error: ")
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    app.session_state[ui.KEY_DATA_DIR] = str(tmp_path)
    app.session_state[ui.KEY_DATASET] = "ml-100k"
    app.run()
    app.switch_page("pages/data.py").run()
    assert not app.exception, app.exception
    shown = [e.value for e in [*app.error, *app.sidebar.error]]
    assert any(message in text for text in shown), (message, shown)
