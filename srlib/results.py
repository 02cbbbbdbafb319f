"""Results files with provenance, and the reproduction ledger of the article's claims.

A chapter records what it measured with ``record(name, profile, claims=..., data=...)``:
one JSON file per chapter and profile, carrying the git commit, device, library versions,
parameters and wall time beside the numbers. ``make execute`` points ``SRLIB_RESULTS_DIR``
at ``results/``; elsewhere (nbval, a reader's Colab) nothing is written unless the
variable is set. The ledger page reads those files back with ``ledger``.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .imageio import atomic_write

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
VERDICTS = ("reproduced", "partly", "not reproduced", "not yet measured")


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    article: str
    chapter: str


#: The quantitative claims of the article (Chrisóstomo, 2020; `chrisostomo2020` in references.bib), each
#: with the chapter that measures it.
CLAIMS = (
    Claim("C1", "Mitchell–Netravali round trip ×0.5/×2 loses mostly high frequencies (edges)", "qualitative (figures)", "01_fir_filters"),
    Claim("C2", "Among FIR filters, Lanczos gives the best ×2 PSNR on the training set", "Lanczos best (table)", "01_fir_filters"),
    Claim("C3", "SRCNN ≈ 4 dB above bicubic", "≈ +4 dB", "04_srcnn"),
    Claim("C4", "FSRCNN orders of magnitude faster than SRCNN at comparable or better PSNR", "≫ 10× faster", "05_fsrcnn"),
    Claim("C5", "FSRCNN: retraining only the deconvolution gives another scale factor", "works", "05_fsrcnn"),
    Claim("C6", "ESPCN orders of magnitude faster than SRCNN; sub-pixel conv learns faster than deconv", "≫ 10× faster", "06_espcn"),
    Claim("C7", "Residual learning makes a deep network (VDSR) converge fast", "4 h on a Titan Z", "07_vdsr"),
    Claim("C8", "SP-VDSR epoch 1 s vs VDSR (same depth) 3 s", "1 s vs 3 s", "08_sp_vdsr"),
    Claim("C9", "SP-VDSR 44.86 dB (train set, ~1 h) vs VDSR 41.50 dB in the same time", "44.86 vs 41.50 dB", "08_sp_vdsr"),
    Claim("C10", "Lanczos input +0.364 dB over bilinear input; inputs converge similarly", "+0.364 dB", "08_sp_vdsr"),
    Claim("C11", "SP-VDSR +3.68 dB over its Lanczos input on a line-art test image", "+3.68 dB", "08_sp_vdsr"),
    Claim("C12", "SP-VDSR matches Lanczos quickly, then plateaus ~200 epochs before improving", "plateau ~200 epochs", "08_sp_vdsr"),
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def device_name() -> str:
    """A human-readable name of the device torch computes on here."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "Apple MPS"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(profile: str, parameters: dict | None = None, wall_time: float | None = None) -> dict:
    """Where a number came from: commit, device, versions, profile, parameters, wall time."""
    versions = {"python": sys.version.split()[0], "srlib": __version__}
    for package in ("torch", "numpy", "scipy", "pillow", "scikit-image"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "device": device_name(),
        "platform": platform.platform(),
        "profile": profile,
        "parameters": parameters or {},
        "wall_time_s": wall_time,
        "versions": versions,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def record(name: str, profile: str, *, claims: dict[str, dict], data: dict | None = None,
           parameters: dict | None = None, wall_time: float | None = None) -> Path | None:
    """Write ``results/<name>-<profile>.json`` when SRLIB_RESULTS_DIR is set (else do nothing).

    ``claims`` maps a claim id to {"measured": str, "verdict": one of VERDICTS,
    "conditions": str}, and "basis": "converged" when the measurement is of networks trained to
    convergence (e.g. the shipped weights) rather than of the profile's own training; the file
    is replaced atomically.
    """
    known = {c.id for c in CLAIMS}
    for cid, row in claims.items():
        if cid not in known:
            raise ValueError(f"unknown claim id {cid!r}")
        if row.get("verdict") not in VERDICTS or not row.get("measured"):
            raise ValueError(f"claim {cid} needs a 'measured' value and a verdict among {VERDICTS}")
        if row.get("basis", "converged") != "converged":
            raise ValueError(f"claim {cid}: basis can only be 'converged', got {row['basis']!r}")
    folder = os.environ.get("SRLIB_RESULTS_DIR")
    if not folder:
        return None
    path = Path(folder) / f"{name}-{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "provenance": provenance(profile, parameters, wall_time),
               "claims": claims, "data": data or {}}
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode()))
    return path


PRETRAINED_RESULTS = RESULTS_DIR / "pretrained"


def pretrained_runs(folder: str | os.PathLike = PRETRAINED_RESULTS) -> list[dict]:
    """The results files of the shipped weights (scripts/ship_weights.py), by scale then name:
    protocol scores beside bicubic and Lanczos-3, the run's configuration, Set5 history and
    provenance."""
    runs = [json.loads(p.read_text()) for p in Path(folder).glob("*.json")]
    return sorted(runs, key=lambda run: (run["scale"], run["name"]))


def doubling_gain(history: list[dict], start: float = 0.1, end: float = 0.6) -> float:
    """Validation dB gained per doubling of training time: a least-squares line in log-time
    through a run's validations between two fractions of its length, before a schedule's end
    flattens the curve. Extrapolated, it is how the book predicts the budget of a target."""
    points = np.array([(h["wall_time"], h["val_psnr"]) for h in history if h.get("val_psnr") is not None])
    if len(points) == 0:
        raise ValueError("the history has no validation")
    seconds, psnr = points.T
    middle = (seconds >= start * seconds[-1]) & (seconds <= end * seconds[-1])
    if middle.sum() < 2:
        raise ValueError(f"fewer than two validations between {start:.0%} and {end:.0%} of the run")
    return float(np.polyfit(np.log2(seconds[middle]), psnr[middle], 1)[0])


def load_all(folder: str | os.PathLike = RESULTS_DIR) -> list[dict]:
    """Every results file in ``folder``, sorted by file name."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def future_work(folder: str | os.PathLike = RESULTS_DIR) -> list[dict]:
    """The article's suggestions for future work as chapter 9 ran them: the rows of each
    results file's ``data["future"]`` ({"suggestion", "measured", "conditions"}), from the
    full-profile file of a chapter when there is one, else its quick one."""
    found = [r for r in load_all(folder) if r.get("data", {}).get("future")]
    full = {r["name"] for r in found if r["provenance"]["profile"] == "full"}
    rows = []
    for result in found:
        prov = result["provenance"]
        if prov["profile"] != "full" and result["name"] in full:
            continue
        rows.extend({**row, "profile": prov["profile"], "device": prov["device"],
                     "commit": (prov["git_commit"] or "unknown")[:10]} for row in result["data"]["future"])
    return rows


QUICK_ONLY = "not testable at this budget"


def ledger(folder: str | os.PathLike = RESULTS_DIR) -> list[dict]:
    """One row per claim C1–C12 and condition: the article's value beside its measurements.

    Converged runs lead: a chapter's full-profile row replaces its quick one, rows of other
    chapters (other conditions) stay, identical rows appear once; each row's "basis" says
    what was measured: "full", "converged" (trained to convergence, whatever the profile that
    scored it) or "quick". A minutes-long quick run never makes a claim "not reproduced": its
    verdict then reads "not testable at this budget" (its number is kept, labelled as such).
    A claim nobody has measured says so.
    """
    measured: dict[str, list[dict]] = {}
    for result in load_all(folder):
        prov = result["provenance"]
        for cid, row in result["claims"].items():
            measured.setdefault(cid, []).append({
                **row, "basis": row.get("basis", prov["profile"]), "profile": prov["profile"], "device": prov["device"],
                "commit": (prov["git_commit"] or "unknown")[:10], "source": result["name"]})
    rows = []
    for claim in CLAIMS:
        found = measured.get(claim.id, [])
        with_full = {r["source"] for r in found if r["profile"] == "full"}
        kept, seen = [], set()
        for row in sorted(found, key=lambda r: r["basis"] == "quick"):
            key = (row["source"] if row["profile"] == "full" or row["source"] in with_full else None,
                   row["measured"], row["conditions"])
            if (row["profile"] != "full" and row["source"] in with_full) or key in seen:
                continue
            seen.add(key)
            kept.append(row)
        kept = [{**r, "verdict": QUICK_ONLY} if r["basis"] == "quick" and r["verdict"] == "not reproduced" else r
                for r in kept]
        base = {"id": claim.id, "claim": claim.text, "article": claim.article, "chapter": claim.chapter}
        if not kept:
            rows.append({**base, "measured": "—", "verdict": "not yet measured", "conditions": "—",
                         "basis": "—", "profile": "—", "device": "—", "commit": "—"})
        rows.extend({**base, **row} for row in kept)
    return rows
