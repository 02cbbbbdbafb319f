"""Ship a finished `srlib train` run as pretrained weights: score it, record it, list it.

    python scripts/ship_weights.py RUN_DIR --name espcn-x3-t91 --scale 3 --data "T91 (91 images), ..."

Scores the run's weights.pt with `srlib eval` under srlib's pinned arithmetic
(``python -m srlib.portable``) on Set5, Set14 and BSD100 beside MATLAB bicubic and
Lanczos-3, writes results/pretrained/NAME.json (scores, the run's configuration, history and
provenance), copies the weights to srlib/pretrained/NAME.pt and adds or replaces the manifest
entry. A mixed-scale run (VDSR) ships once per scale into one ``--file``; its Set5 history,
validated at the run's own scale, is kept only in that scale's results. The manifest is then
ordered by scale, photo networks before line art, best Set5 PSNR first: so ``--model
NETWORK`` and an upscale without ``--model`` pick the best photo weights. No test set chooses anything here: the weights shipped are the run's last ones.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SETS = ("Set5", "Set14", "BSD100")


def score(scale: int, *how: str, threads: int = 1) -> dict:
    """Protocol PSNR/SSIM per test set of `srlib eval ... *how`, run pinned."""
    scores = {}
    for name in SETS:
        done = subprocess.run([sys.executable, "-m", "srlib.portable", sys.executable, "-m", "srlib", "eval",
                               "--dataset", name, "--scale", str(scale), *how, "--json"],
                              capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        report = json.loads(done.stdout)
        scores[name] = {"psnr": report["psnr"], "ssim": report["ssim"]}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of srlib train (weights.pt, history.json)")
    parser.add_argument("--name", required=True, help="the entry's name, e.g. espcn-x3-t91")
    parser.add_argument("--scale", required=True, type=int, help="the scale to ship (one of a mixed-scale run's)")
    parser.add_argument("--data", required=True, help="the manifest's training_data text")
    parser.add_argument("--file", help="the weights file's name in srlib/pretrained (default NAME.pt): one "
                                       "file for every scale of a mixed-scale run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads scoring uses (default 1)")
    args = parser.parse_args()
    weights, history = args.run / "weights.pt", json.loads((args.run / "history.json").read_text())
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    model = payload["model"]
    scores = {model: score(args.scale, "--model", model, "--weights", str(weights), threads=args.threads),
              **{method: score(args.scale, "--method", method) for method in ("bicubic", "lanczos3")}}
    target = ROOT / "srlib" / "pretrained" / (args.file or f"{args.name}.pt")
    shutil.copy(weights, target)
    if args.scale != history["config"]["scale"]:  # Set5 monitored another scale of a mixed-scale run
        history["history"] = [{**h, "val_psnr": None, "val_ssim": None} for h in history["history"]]
    result = {"name": args.name, "model": model, "scale": args.scale, "scores": scores,
              "note": "Protocol scores (MATLAB bicubic LR, studio Y, border crop = scale) computed by "
                      "`srlib eval` under srlib.portable's pins. Set5 only monitored the run; the shipped "
                      "weights are its last ones, chosen by no score.",
              **{key: history[key] for key in ("config", "provenance", "wall_time", "epochs", "iterations", "history")
                 if key in history}}
    (ROOT / "results" / "pretrained" / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    entry = {"name": args.name, "model": model, "scale": args.scale, "options": json.loads(json.dumps(payload["options"])),
             "file": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
             "training_data": args.data, "psnr_set5": round(scores[model]["Set5"]["psnr"], 2),
             "results": f"results/pretrained/{args.name}.json"}
    manifest_path = ROOT / "srlib" / "pretrained" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entries = [e for e in manifest["entries"] if e["name"] != args.name] + [entry]
    manifest["entries"] = sorted(entries, key=lambda e: ("lineart" in e["name"], e["scale"], -e["psnr_set5"]))
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(args.name, {name: {s: round(v["psnr"], 2) for s, v in sets.items()} for name, sets in scores.items()})


if __name__ == "__main__":
    main()
