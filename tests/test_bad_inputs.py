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
