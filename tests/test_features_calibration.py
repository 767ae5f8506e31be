"""Calibration memory: a setting measured on a saturated CPU is not trusted on an idle one."""

from recsys.features import calibration


def test_busy_machine_calibration_is_remeasured_when_idle(monkeypatch):
    record = {"best": {"batch_size": 1}, "load_per_core": 3.2}
    monkeypatch.setattr(calibration, "_load_per_core", lambda: 0.1)
    assert calibration._measured_under_load_now_idle(record)
    monkeypatch.setattr(calibration, "_load_per_core", lambda: 2.5)  # still busy: keep it
    assert not calibration._measured_under_load_now_idle(record)
    monkeypatch.setattr(calibration, "_load_per_core", lambda: 0.1)
    assert not calibration._measured_under_load_now_idle({**record, "load_per_core": 0.3})  # measured idle
    assert not calibration._measured_under_load_now_idle({"best": {}})  # older record without load
