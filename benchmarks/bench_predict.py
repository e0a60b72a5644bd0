"""Parity and speed of the authors' ESPNet checkpoints run through espdsl (full size, CPU).

Prints, per checkpoint: parameters, max |logit difference| to the reference outputs, class-map
agreement, and the forward time at 1x3x512x1024 — all measured in this one run.

    /work/venv/bin/python benchmarks/bench_predict.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import espdsl
from espdsl.predict import config_for, read_image, segment

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "espnet-reference"
IMAGE = "frankfurt_000000_000294_leftImg8bit"


def main() -> int:
    if not REF.is_dir():
        print(f"reference data not found at {REF}")
        return 1
    x = torch.from_numpy(np.load(REF / "outputs" / f"{IMAGE}_input.npy"))
    print(f"{'checkpoint':<28} {'params':>8} {'max|diff|':>10} {'agree':>8} {'forward s':>9}")
    for kind, spec in (("encoder", "espnet_c"), ("decoder", "espnet")):
        for q in (3, 5, 8):
            model = espdsl.create_model(spec, weights=REF / "weights" / kind / f"espnet_p_2_q_{q}.pth",
                                        alpha3=q).eval()
            with torch.no_grad():
                t = time.perf_counter()
                y = model(x)
                dt = time.perf_counter() - t
            tag = f"{kind}_p2_q{q}"
            if kind == "decoder":
                ours, ref = F.avg_pool2d(y, 8)[0].numpy(), np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits_pooled8.npy")
            else:
                ours, ref = y[0].numpy(), np.load(REF / "outputs" / f"{IMAGE}_{tag}_logits.npy")
            classes = np.array(Image.open(REF / "outputs" / f"{IMAGE}_{tag}_classes.png"))
            agree = (y[0].argmax(0).numpy() == classes).mean()
            n = sum(p.numel() for p in model.parameters())
            name = f"{kind}/espnet_p_2_q_{q}.pth"
            print(f"{name:<28} {n:>8,} {np.abs(ours - ref).max():>10.2e} "
                  f"{agree:>8.4%} {dt:>9.2f}")
    # the predict path: own image reading and preprocessing
    model = espdsl.create_model("espnet", weights=REF / "weights/decoder/espnet_p_2_q_8.pth", alpha3=8)
    cfg = config_for(model)
    t = time.perf_counter()
    ours = segment(model.eval(), read_image(REF / f"{IMAGE}.png"), cfg)
    dt = time.perf_counter() - t
    ref = np.array(Image.open(REF / "outputs" / f"{IMAGE}_decoder_p2_q8_classes.png"))
    print(f"predict path (read+preprocess+forward): {(ours == ref).sum():,}/{ref.size:,} pixels "
          f"agree ({(ours == ref).mean():.4%}), {dt:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
