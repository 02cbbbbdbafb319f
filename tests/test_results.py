"""srlib.results: provenance-carrying results files and the claims ledger built from them."""
import json

import pytest

from srlib.results import CLAIMS, ledger, provenance, record


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
    assert [r["id"] for r in rows] == ["C1", "C1"] + [c.id for c in CLAIMS[1:]]
    assert [r["profile"] for r in rows[:2]] == ["full", "quick"]
    assert all(r["verdict"] == "not yet measured" for r in rows[2:])


def test_every_file_in_the_shipped_results_folder_is_a_chapter_record_the_ledger_reads():
    rows = ledger()  # the repository's results/: other records (runs, leaderboard) live in subfolders
    assert {row["id"] for row in rows} == {claim.id for claim in CLAIMS}
