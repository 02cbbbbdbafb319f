"""FSRCNN at a new scale the paper's way: keep a trained network's body, train a new deconvolution.

    python scripts/fsrcnn_transfer.py srlib/pretrained/fsrcnn-x3-291.pt --scale 2 --out runs/fsrcnn-x2 \
        --data 291 --epochs 60 [--val Set5] [--patch-size 17]

Dong et al. (2016) trained FSRCNN at ×3 and obtained ×2 and ×4 by replacing the last layer,
the deconvolution, and training it alone: the convolutions before it work at low resolution
and do not depend on the scale. This runs that recipe with srlib's training loop (resumable,
the same patches and pairs as `srlib train`, Adam at 1e-3 on the deconvolution with the cosine
schedule) and writes RUN/weights.pt and RUN/history.json as `srlib train` does, so the run can
be scored and shipped like any other (scripts/ship_weights.py).
"""
import argparse
from pathlib import Path

from srlib import inference, models, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="trained FSRCNN weights (any scale)")
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default="291")
    parser.add_argument("--val", default="Set5")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--patch-size", type=int, default=17)
    parser.add_argument("--val-every", type=int, default=5)
    args = parser.parse_args()
    source = inference.load_weights(args.weights, model="fsrcnn")
    start = models.freeze_all_but_deconv(models.with_new_deconv(source, args.scale))
    # FSRCNN's recipe runs the deconvolution at a tenth of ``lr``: 1e-2 gives it Adam's usual 1e-3.
    config = training.TrainConfig(model="fsrcnn", scale=args.scale, options=dict(source.options), data=args.data,
                                  val=args.val, patch_size=args.patch_size, epochs=args.epochs, schedule="cosine",
                                  lr=1e-2, val_every=args.val_every, channels_last=True)
    result = training.train(config, args.out, initial=start)
    last = result.history[-1]
    inference.save_weights(args.out / "weights.pt", result.model, metadata={
        "training_data": args.data, "validation_data": args.val, "val_psnr": result.val_psnr,
        "epochs": last["epoch"], "iterations": last["iteration"], "recipe": "fsrcnn deconvolution only, cosine",
        "transferred_from": str(args.weights), "history": training.HISTORY, "provenance": result.provenance})
    print(f"{args.out / 'weights.pt'}: fsrcnn x{args.scale} (new deconvolution on {args.weights.name}'s body), "
          f"validation PSNR {result.val_psnr:.2f} dB")


if __name__ == "__main__":
    main()
