"""The cached-step helper: reuse on equal inputs, recompute on changed ones, atomic results, stable keys."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mimofm.experiments._steps import Steps, step_key


def _counter():
    calls = []

    def fn():
        calls.append(1)
        return {"value": len(calls)}

    return fn, calls


def test_a_step_is_reused_with_equal_inputs_and_recomputed_when_one_changes(tmp_path):
    fn, calls = _counter()
    st = Steps(tmp_path)
    a = st.run("train", fn, {"steps": 10, "lr": 1e-3})
    b = Steps(tmp_path).run("train", fn, {"lr": 1e-3, "steps": 10})  # a fresh object, keys in another order
    assert (a.value, b.value, len(calls)) == ({"value": 1}, {"value": 1}, 1)
    assert not a.cached and b.cached and a.key == b.key
    c = st.run("train", fn, {"steps": 11, "lr": 1e-3})
    assert c.value == {"value": 2} and len(calls) == 2 and c.key != a.key


def test_a_changed_upstream_result_recomputes_the_downstream_step(tmp_path):
    st = Steps(tmp_path)
    up1 = st.run("up", lambda: 1, {"x": 1})
    up2 = st.run("up", lambda: 2, {"x": 2})
    fn, calls = _counter()
    st.run("down", fn, {}, upstream=(up1,))
    st.run("down", fn, {}, upstream=(up1,))
    assert len(calls) == 1
    st.run("down", fn, {}, upstream=(up2,))
    assert len(calls) == 2


def test_a_crash_inside_a_step_leaves_no_result_file_and_the_next_run_recomputes(tmp_path):
    st = Steps(tmp_path)

    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        st.run("eval", boom, {"n": 1})
    assert not (tmp_path / ".steps").exists() or not list((tmp_path / ".steps").iterdir())
    assert st.cached("eval", {"n": 1}) is None
    assert st.run("eval", lambda: [1.5], {"n": 1}).value == [1.5]
    assert st.cached("eval", {"n": 1}).value == [1.5]


def test_a_result_that_cannot_be_written_leaves_no_file_under_its_name(tmp_path):
    st = Steps(tmp_path)
    with pytest.raises(ValueError):
        st.run("nan", lambda: float("nan"), {})  # JSON without NaN: the write fails half-way
    assert [p.name for p in (tmp_path / ".steps").iterdir()] == []


def test_the_key_is_stable_across_processes_and_names_paths_as_strings(tmp_path):
    here = step_key("fig2", {"snrs": (0.0, 10.0), "dir": tmp_path / "a"}, ("k1",))
    code = (
        "from pathlib import Path; from mimofm.experiments._steps import step_key; "
        f"print(step_key('fig2', {{'snrs': [0.0, 10.0], 'dir': Path({str(tmp_path / 'a')!r})}}, ('k1',)))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here and len(here) == 64
    assert step_key("fig2", {"snrs": [0.0, 10.0]}) != step_key("fig3", {"snrs": [0.0, 10.0]})


def test_array_results_round_trip_through_npz_without_pickle(tmp_path):
    st = Steps(tmp_path)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    r = st.run("h", lambda: {"h": arr, "snr": np.array([1.0])}, {"seed": 0}, kind="npz")
    np.testing.assert_array_equal(r.value["h"], arr)
    again = Steps(tmp_path).run("h", lambda: pytest.fail("recomputed"), {"seed": 0}, kind="npz")
    assert again.cached and again.value["h"].dtype == np.float32
    np.testing.assert_array_equal(again.value["h"], arr)


def test_the_stored_json_records_its_step_inputs_and_key(tmp_path):
    st = Steps(tmp_path)
    r = st.run("adapt/site-a", lambda: {"stem": "x"}, {"shots": 10})
    doc = json.loads(st.path("adapt/site-a", r.key).read_text())
    assert doc == {"step": "adapt/site-a", "key": r.key, "inputs": {"shots": 10}, "result": {"stem": "x"}}


def test_inputs_that_are_not_json_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object"):
        Steps(tmp_path).run("x", lambda: 1, {"model": object()})
