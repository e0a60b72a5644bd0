"""Reduced precision on ESPNet (alpha3 = 8, the authors' Cityscapes checkpoint, 1x3x512x1024):
speed and class maps of four builds, in one process, interleaved round by round:

* authors' fp32 eager: the ``.py`` export of the default IR (``espdsl compile -o net.py``), a
  plain ``nn.Module`` wired as the reference README says (as in ``bench_inference.py``);
* fp32 optimized: ``create_model(..., optimize=True)``;
* bf16: ``create_model(..., optimize=True, dtype="bf16")``;
* bf16, inductor: the same build with ``backend="inductor"`` (compiled by torch's inductor on
  its first call, timed apart: ``--no-inductor`` leaves it out);
* int8: ``espdsl quantize`` (torchao PT2E, X86InductorQuantizer, inductor), calibrated on
  images derived from the reference image (its mirror image and three crops scaled back to
  2048x1024: ``--calibration-dir`` keeps them) and evaluated on the original, which is not
  among them; or ``--int8 net_int8.pt`` from elsewhere.

Printed: the CPU's flags that matter, the load average before and after, threads, rounds;
per build the median, min, max and interquartile range of the wall time and of the process
CPU time per forward, the speed-up over the authors' eager (median of per-round ratios, and
ratio of medians), pixel agreement and mIoU of the class map with the authors' fp32 eager on
the reference image, and the bytes of the weights.

    python benchmarks/bench_precision.py [--rounds 21] [--threads 2] [--no-int8] [--no-inductor]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import espdsl
from espdsl.accuracy import agreement, mean_iou, weight_bytes
from espdsl.passes.precision import bf16_supported

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import plain_module  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("ESPDSL_REFERENCE", ROOT.parent / "shared" / "espnet-reference"))
WEIGHTS = REF / "weights" / "decoder" / "espnet_p_2_q_8.pth"
IMAGE = REF / "frankfurt_000000_000294_leftImg8bit.png"
FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    name = next((l.split(":", 1)[1].strip() for l in text.splitlines()
                 if l.startswith("model name")), "?")
    return f"{name}; " + ", ".join(f"{f}: {'yes' if f in flags else 'no'}" for f in FLAGS)


def calibration_images(folder: Path) -> list[Path]:
    """The reference image's mirror image and three crops (top-left quarter, bottom-right
    quarter, the mirrored centre half), each scaled back to the image's size."""
    from PIL import Image, ImageOps
    im = Image.open(IMAGE).convert("RGB")
    w, h = im.size
    made = {
        "mirror": ImageOps.mirror(im),
        "crop_top_left": im.crop((0, 0, w // 2, h // 2)).resize((w, h), Image.BILINEAR),
        "crop_bottom_right": im.crop((w // 2, h // 2, w, h)).resize((w, h), Image.BILINEAR),
        "crop_centre_mirror": ImageOps.mirror(im.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)))
        .resize((w, h), Image.BILINEAR),
    }
    paths = []
    for name, image in made.items():
        path = folder / f"calib_{name}.png"
        image.save(path)
        paths.append(path)
    return paths


QUARTERS = {"top_left": (0, 0), "top_right": (1, 0), "bottom_left": (0, 1), "bottom_right": (1, 1)}


def quarters(folder: Path) -> list[Path]:
    """The reference image's four quarters at its own resolution: 1024x512 each, the network's
    input size, so the spec's resize leaves them as they are; disjoint, so one can calibrate,
    another validate and a third test (objects appear twice as large as in the full image
    scaled to 1024x512)."""
    from PIL import Image
    im = Image.open(IMAGE).convert("RGB")
    w, h = im.size[0] // 2, im.size[1] // 2
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (i, j) in QUARTERS.items():
        path = folder / f"quarter_{name}.png"
        im.crop((i * w, j * h, (i + 1) * w, (j + 1) * h)).save(path)
        paths.append(path)
    return paths


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{statistics.median(values):7.1f} | {min(values):6.1f} | {max(values):6.1f} | {q[2] - q[0]:5.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 build")
    parser.add_argument("--no-inductor", action="store_true",
                        help="skip the bf16 build compiled by inductor")
    parser.add_argument("--int8", type=Path, action="append",
                        help="an int8 checkpoint from espdsl quantize (repeatable: one build each)")
    parser.add_argument("--images", type=Path, nargs="*", default=[],
                        help="more images on which to compare each build's class map with the "
                             "fp32 optimized build's (e.g. held-out quarters of the reference)")
    parser.add_argument("--calibration-dir", type=Path, help="keep the calibration images here")
    parser.add_argument("--write-quarters", type=Path, metavar="DIR",
                        help="only write the reference image's four 1024x512 quarters into DIR")
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"needs the reference data at {REF} (ESPDSL_REFERENCE=...)")
    if args.write_quarters:
        for path in quarters(args.write_quarters):
            print(path)
        return
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    from espdsl.predict import config_for, preprocess, read_image

    load_before = os.getloadavg()
    default = espdsl.create_model("espnet", weights=WEIGHTS, alpha3=8).eval()
    folder = Path(tempfile.mkdtemp(prefix="espdsl-precision-"))
    builds: dict[str, torch.nn.Module] = {
        "authors' fp32 eager (.py)": plain_module(default.espdsl_ir, default.state_dict(), folder),
        "fp32 optimized": espdsl.create_model("espnet", weights=WEIGHTS, alpha3=8, optimize=True),
        "bf16 optimized": espdsl.create_model("espnet", weights=WEIGHTS, alpha3=8, optimize=True,
                                              dtype="bf16"),
    }
    notes = []
    x = preprocess(read_image(IMAGE), config_for(default))
    if not args.no_inductor:
        compiled = espdsl.create_model("espnet", weights=WEIGHTS, alpha3=8, optimize=True,
                                       dtype="bf16", backend="inductor")
        start = time.perf_counter()
        compiled(x)
        notes.append(f"bf16, inductor: compile (first call) {time.perf_counter() - start:.1f} s")
        builds["bf16 optimized, inductor"] = compiled
    if not args.no_int8:
        from espdsl.quantize import calibration_inputs, quantize_model, save_quantized
        start = time.perf_counter()
        if args.int8:
            for path in args.int8[:-1]:
                loaded = espdsl.create_model(path)
                t0 = time.perf_counter()
                loaded(x)
                notes.append(f"int8 {path.name}: inductor compile (first call) "
                             f"{time.perf_counter() - t0:.1f} s")
                builds[f"int8 ({path.name})"] = loaded
            int8 = espdsl.create_model(args.int8[-1])
            notes.append(f"int8: loaded {args.int8[-1]} in {time.perf_counter() - start:.1f} s")
        else:
            cal_dir = args.calibration_dir or folder
            cal_dir.mkdir(parents=True, exist_ok=True)
            images = calibration_images(cal_dir)
            int8 = quantize_model(default, calibration_inputs(default, images))
            save_quantized(int8, folder / "net_int8.pt")
            notes.append(f"int8: calibrated on {', '.join(p.name for p in images)} (derived from "
                         f"the reference image, which is evaluated and not among them) in "
                         f"{time.perf_counter() - start:.1f} s; "
                         f"checkpoint {(folder / 'net_int8.pt').stat().st_size:,} bytes")
        start = time.perf_counter()
        int8(x)
        notes.append(f"int8: inductor compile (first call) {time.perf_counter() - start:.1f} s")
        builds[f"int8 ({args.int8[-1].name})" if args.int8 else "int8 (PT2E, x86 inductor)"] = int8

    names = list(builds)
    maps = {n: m(x).argmax(1)[0].numpy() for n, m in builds.items()}
    ref_map = maps[names[0]]
    fns = list(builds.values())
    for _ in range(args.warmup):
        for fn in fns:
            fn(x)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for _ in range(args.rounds):
        for n, fn in zip(names, fns):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(x)
            wall[n].append((time.perf_counter() - t0) * 1e3)
            cpu[n].append((time.process_time() - c0) * 1e3)
    load_after = os.getloadavg()

    print(f"ESPNet alpha3=8, authors' Cityscapes weights, input 1x3x512x1024 (the reference "
          f"image), torch {torch.__version__}, {args.threads} threads, {args.rounds} interleaved "
          f"rounds after {args.warmup} warm-up")
    print(f"CPU: {cpu_flags()}; oneDNN bf16: {'yes' if bf16_supported() else 'no'}")
    print(f"load average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after {', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} CPUs\n")
    base_w, base_c = wall[names[0]], cpu[names[0]]
    print("| build | wall ms: median | min | max | IQR | speed-up (per round) | speed-up (medians) "
          "| CPU ms: median | speed-up (CPU) | pixels = authors' fp32 | mIoU | weight bytes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in names:
        w, c = wall[n], cpu[n]
        per_round = statistics.median(a / b for a, b in zip(base_w, w))
        print(f"| {n} | {spread(w)} | {per_round:.2f}x | "
              f"{statistics.median(base_w) / statistics.median(w):.2f}x | "
              f"{statistics.median(c):.1f} | {statistics.median(base_c) / statistics.median(c):.2f}x | "
              f"{100 * agreement(ref_map, maps[n]):.2f}% | {100 * mean_iou(ref_map, maps[n]):.2f}% | "
              f"{weight_bytes(builds[n]):,} |")
    print()
    for note in notes:
        print(note)
    if args.images:
        print_agreement_on(builds, args.images)


def print_agreement_on(builds: dict[str, torch.nn.Module], images: list[Path]) -> None:
    """Pixel agreement and mIoU of each build's class map with the fp32 optimized build's on
    each of ``images`` (read and preprocessed by the spec's predict: section)."""
    from espdsl.predict import config_for, preprocess, read_image
    ref_name = "fp32 optimized"
    cfg = config_for(builds[ref_name])
    print(f"\nclass maps against the {ref_name} build (pixels agree / mIoU):")
    print("| build | " + " | ".join(p.name for p in images) + " |")
    print("| --- |" + " ---: |" * len(images))
    inputs = [preprocess(read_image(p), cfg) for p in images]
    refs = [builds[ref_name](x).argmax(1)[0].numpy() for x in inputs]
    for n, m in builds.items():
        cells = []
        for x, ref in zip(inputs, refs):
            got = m(x).argmax(1)[0].numpy()
            cells.append(f"{100 * agreement(ref, got):.2f}% / {100 * mean_iou(ref, got):.2f}%")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
