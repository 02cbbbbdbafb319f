"""srlib.results: provenance-carrying results files and the claims ledger built from them."""
import json

import numpy as np
import pytest

from srlib import results
from srlib.results import CLAIMS, future_work, ledger, provenance, record


def test_provenance_names_commit_device_versions_and_profile():
    prov = provenance("quick", {"n": 3}, 1.5)
    assert {"git_commit", "device", "versions", "profile", "parameters", "wall_time_s"} <= prov.keys()
    assert prov["profile"] == "quick" and prov["parameters"] == {"n": 3} and prov["wall_time_s"] == 1.5
    assert "torch" in prov["versions"] and "numpy" in prov["versions"]


def test_record_writes_nothing_without_a_results_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SRLIB_RESULTS_DIR", raising=False)
    assert record("x", "quick", claims={"C1": {"measured": "a", "verdict": "reproduced"}}) is None


def test_record_writes_one_file_per_chapter_and_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    path = record("ch", "full", claims={"C2": {"measured": "lanczos4 best", "verdict": "partly", "conditions": "c"}},
                  data={"table": [1, 2]})
    assert path == tmp_path / "ch-full.json"
    saved = json.loads(path.read_text())
    assert saved["claims"]["C2"]["verdict"] == "partly" and saved["data"] == {"table": [1, 2]}
    assert saved["provenance"]["profile"] == "full"
    assert [p.name for p in tmp_path.iterdir()] == ["ch-full.json"]  # no temp file left


@pytest.mark.parametrize("claims, message", [
    ({"C99": {"measured": "a", "verdict": "reproduced"}}, "unknown claim"),
    ({"C1": {"measured": "a", "verdict": "yes"}}, "verdict"),
    ({"C1": {"verdict": "reproduced"}}, "measured"),
])
def test_record_rejects_malformed_claims(monkeypatch, tmp_path, claims, message):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        record("ch", "quick", claims=claims)


def test_ledger_lists_every_claim_and_marks_unmeasured_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    record("a", "quick", claims={"C1": {"measured": "q", "verdict": "reproduced", "conditions": "c"}})
    record("a", "full", claims={"C1": {"measured": "f", "verdict": "partly", "conditions": "c"}})
    rows = ledger(tmp_path)
    assert [r["id"] for r in rows] == ["C1"] + [c.id for c in CLAIMS[1:]]  # the full run replaces its quick one
    assert (rows[0]["profile"], rows[0]["measured"]) == ("full", "f")
    assert all(r["verdict"] == "not yet measured" for r in rows[1:])


def test_ledger_keeps_one_row_per_condition_and_never_fails_a_claim_on_a_quick_run_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    record("a", "quick", claims={"C3": {"measured": "+0.4 dB", "verdict": "not reproduced", "conditions": "minutes"}})
    record("b", "quick", claims={"C3": {"measured": "+0.4 dB", "verdict": "not reproduced", "conditions": "minutes"},
                                 "C2": {"measured": "x", "verdict": "reproduced", "conditions": "photos"}})
    record("c", "quick", claims={"C2": {"measured": "y", "verdict": "reproduced", "conditions": "drawings"}})
    rows = {cid: [r for r in ledger(tmp_path) if r["id"] == cid] for cid in ("C2", "C3")}
    assert [r["verdict"] for r in rows["C3"]] == ["not testable at this budget"]  # one row: the same measurement twice
    assert [r["conditions"] for r in rows["C2"]] == ["photos", "drawings"]  # two conditions, two rows
    record("a", "full", claims={"C3": {"measured": "+1.1 dB", "verdict": "not reproduced", "conditions": "hours"}})
    c3 = [r for r in ledger(tmp_path) if r["id"] == "C3"]
    assert [(r["profile"], r["verdict"]) for r in c3] == [("full", "not reproduced"), ("quick", "not testable at this budget")]


def test_a_converged_measurement_leads_and_keeps_its_verdict_whatever_the_profile_that_scored_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    record("a", "quick", claims={"C3": {"measured": "+0.4 dB", "verdict": "not reproduced", "conditions": "minutes"}})
    record("b", "quick", claims={"C3": {"measured": "+0.5 dB", "verdict": "not reproduced", "conditions": "hours",
                                        "basis": "converged"}})
    c3 = [r for r in ledger(tmp_path) if r["id"] == "C3"]
    assert [(r["basis"], r["verdict"]) for r in c3] == [("converged", "not reproduced"), ("quick", "not testable at this budget")]
    with pytest.raises(ValueError, match="basis"):
        record("c", "quick", claims={"C3": {"measured": "x", "verdict": "partly", "conditions": "c", "basis": "long"}})


def test_future_work_rows_come_from_the_full_run_when_there_is_one(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_RESULTS_DIR", str(tmp_path))
    row = {"suggestion": "edge loss", "measured": "-0.1 dB", "conditions": "minutes"}
    record("09", "quick", claims={}, data={"future": [row]})
    record("08", "quick", claims={})  # no future work in it
    assert [(r["measured"], r["profile"]) for r in future_work(tmp_path)] == [("-0.1 dB", "quick")]
    record("09", "full", claims={}, data={"future": [{**row, "measured": "-0.3 dB", "conditions": "hours"}]})
    assert [(r["measured"], r["profile"]) for r in future_work(tmp_path)] == [("-0.3 dB", "full")]


def test_every_file_in_the_shipped_results_folder_is_a_chapter_record_the_ledger_reads():
    rows = ledger()  # the repository's results/: other records (runs, leaderboard) live in subfolders
    assert {row["id"] for row in rows} == {claim.id for claim in CLAIMS}


def test_doubling_gain_recovers_the_slope_of_a_log_time_curve_in_its_window():
    history = [{"wall_time": t, "val_psnr": 30 + 0.4 * np.log2(t) + (5 if t > 700 else 0)} for t in range(10, 1001, 10)]
    history.insert(3, {"wall_time": 35.0, "val_psnr": None})  # epochs without validation are skipped
    assert results.doubling_gain(history) == pytest.approx(0.4)  # the late jump lies outside 10-60 %
    with pytest.raises(ValueError, match="fewer than two validations"):
        results.doubling_gain(history[:1])
