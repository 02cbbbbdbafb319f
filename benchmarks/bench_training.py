"""Epoch time of SP-VDSR (5 layers x 8 filters) against VDSRs of the same width.

The article's claim C8: 1 s per epoch for SP-VDSR against 3 s for VDSR on the same data.
The networks train here through srlib.training on the same 32 generated line-art drawings,
the same patches (24x24 LR, x2) and batch 32, on the default device. The runs take turns
one epoch at a time (each call resumes its run), so a change in the machine's load hits all
alike; an epoch's time is the fastest of its run's epochs. Prints the times and each VDSR's
ratio to SP-VDSR beside the ratio of their convolution work, in PyTorch's default layout
(what ``srlib train`` uses unless asked) and with ``channels_last=True``; asserts nothing.

Two VDSRs: one of SP-VDSR's depth (5 convolutions) and one with as many convolutions as
SP-VDSR has in all (5 + the sub-pixel one). The work ratio is a floor for the time ratio
(backward passes cost about twice the forward in both networks), so issue 4's target of
1/4 lies below what the architecture allows against either (0.36 and 0.27 at x2).
"""
import tempfile

import torch

from srlib import models, samples, training

ROUNDS = 5
COMMON = dict(scale=2, patch_size=24, patches_per_image=16, batch_size=32, seed=0)
NETWORKS = [("SP-VDSR 5x8", "spvdsr", {"depth": 5, "width": 8}),
            ("VDSR 5x8", "vdsr", {"depth": 5, "width": 8}),
            ("VDSR 6x8", "vdsr", {"depth": 6, "width": 8})]
LAYOUTS = ("default", "channels_last")


def main() -> None:
    images = samples.line_art_train(32)
    device = training.default_device()
    print(f"{len(images) * COMMON['patches_per_image']} patches 24x24 -> 48x48 per epoch, batch 32, "
          f"{training.provenance(device)['device']}, torch {torch.__version__}")
    histories = {}
    with tempfile.TemporaryDirectory() as tmp:
        for epochs in range(1, ROUNDS + 1):
            for layout in LAYOUTS:
                for label, model, options in NETWORKS:
                    config = training.TrainConfig(model=model, options=options, epochs=epochs,
                                                  channels_last=layout == "channels_last", **COMMON)
                    folder = f"{tmp}/{label.replace(' ', '-')}-{layout}"
                    histories[label, layout] = training.train(config, folder, train_images=images,
                                                              progress=False).history
    times = {key: min(b["wall_time"] - a["wall_time"] for a, b in zip([{"wall_time": 0.0}, *h], h))
             for key, h in histories.items()}
    work = {label: models.macs_per_pixel(models.build(model, 2, **options)) for label, model, options in NETWORKS}
    fast = NETWORKS[0][0]
    print(f"{fast}: {work[fast]:.0f} convolution MACs per output pixel; article: 1 s vs 3 s = 0.33; target <= 0.25")
    for layout in LAYOUTS:
        print(f"{layout}: {fast} {times[fast, layout]:.3f} s/epoch")
        for slow, _, _ in NETWORKS[1:]:
            print(f"  {slow}: {times[slow, layout]:.3f} s/epoch | time ratio {times[fast, layout] / times[slow, layout]:.2f}"
                  f", work ratio {work[fast] / work[slow]:.2f}")
    for label, _, _ in NETWORKS:
        print(f"channels_last speed-up, {label}: {times[label, LAYOUTS[0]] / times[label, LAYOUTS[1]]:.2f}x")


if __name__ == "__main__":
    main()
