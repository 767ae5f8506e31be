"""The Extract page on the new config: precision is a choice (and part of the key), trailers can be cut
to their first seconds, and a refusal is one message without a traceback."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="amp runs on CUDA; its refusal is the CPU behaviour")
def test_amp_on_a_cpu_is_refused_with_one_message(tmp_path):
    from recsys.data import load_dataset

    load_dataset("demo")
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    app.session_state[ui.KEY_DATA_DIR] = str(tmp_path)
    app.run()
    app.switch_page("pages/extract.py").run()
    assert not app.exception, app.exception
    assert app.selectbox(key="ex_precision").options == ["auto", "fp32", "amp"]
    app.radio(key="ex_media").set_value("trailers").run()
    assert app.number_input(key="ex_max_duration").value == 0
    app.selectbox(key="ex_precision").set_value("amp").run()
    app.button(key="ex_run").click().run()
    assert not app.exception, app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "precision 'amp' needs a CUDA device" in errors[0]
    assert "--precision fp32" in errors[0]
