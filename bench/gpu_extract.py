"""Extraction throughput on realistic media, CPU or GPU: posters, trailers, the Ray engine, ML-25M projection.

    .venv/bin/python bench/gpu_extract.py                      # CPU: small sizes, lite0 only
    python bench/gpu_extract.py --posters 3000 --trailers 32   # a GPU machine (see bench/gpu_session.sh)

Media are generated here (and kept in --media-dir): posters as 500x750 JPEGs (TMDB's w500, smooth
shapes and edges, quality 90) and trailers as 1280x720, 24 fps H.264 (libx264 from PyAV's wheel,
--trailer-seconds long, keyframe every --gop frames). Synthetic footage decodes faster than real
trailers; the numbers say what was measured, not more.

Posters, per backbone (lite0 with its offline ImageNet weights; resnet50, vgg19, convnext_base and
vit_base with *random weights*, labelled so: throughput does not depend on the weights):
(a) naive loop: PIL + transform + model one image at a time; (b) pipeline: extract() end to end
(decoding threads or nvJPEG, calibrated batch, chunked writes to a temporary store); (c) model
alone on pre-made tensors at the same settings. efficiency = (b) / (c). Trailers: extract() at
1 and 3 fps (frames per second of computation, end to end). Ray: the same posters and trailers
with --engine ray (local mode unless $RAY_ADDRESS), ray_ratio = Ray / local on posters. ML-25M:
62,000 posters and 13,600 trailers x 150 s at 1 and 3 fps, projected from the measured rates.
Last line: key=value summary.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ML25M_POSTERS = 62_000
ML25M_TRAILERS = 13_600
ML25M_TRAILER_SECONDS = 150
BACKBONES = {
    "lite0": "tf_efficientnet_lite0",
    "resnet50": "resnet50",
    "vgg19": "vgg19",
    "convnext_base": "convnext_base",
    "vit_base": "vit_base_patch16_224",
}


# ---- media ---------------------------------------------------------------------------------------
def make_posters(folder: Path, n: int) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i + 1}.jpg" for i in range(n)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_make_poster, range(n), paths))
    return [str(p) for p in paths]


def _make_poster(i: int, path: Path) -> None:
    from PIL import Image, ImageDraw

    if path.exists():
        return
    rng = np.random.default_rng(i)
    small = rng.integers(0, 256, (10, 7, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((500, 750), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.integers(0, 450), rng.integers(0, 700)
        box = [x, y, x + rng.integers(20, 200), y + rng.integers(10, 60)]
        draw.rectangle(box, fill=tuple(rng.integers(0, 256, 3).tolist()))
    draw.text((40, 660), f"MOVIE {i + 1}", fill=(255, 255, 255))
    partial = path.with_suffix(".partial.jpg")
    image.save(partial, quality=90)
    os.replace(partial, path)


def make_trailers(folder: Path, n: int, seconds: float, gop: int) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i + 1}_{int(seconds)}s_g{gop}.mp4" for i in range(n)]
    threads = max(1, (os.cpu_count() or 1) // max(n, 1))
    with ThreadPoolExecutor(min(n, os.cpu_count() or 1) or 1) as pool:  # PyAV encodes without the GIL
        list(pool.map(lambda args: _make_trailer(*args, seconds, gop, threads), enumerate(paths)))
    return [str(p) for p in paths]


def _make_trailer(i: int, path: Path, seconds: float, gop: int, threads: int) -> None:
    import av

    if path.exists():
        return
    rng = np.random.default_rng(i)

    def scene():
        return np.kron(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))

    base = scene()
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(gop), "threads": str(threads)}
        for f in range(int(seconds * 24)):
            if f % 120 == 0:  # a cut every 5 s
                base = scene()
            frame = np.roll(base, 4 * f, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(partial, path)


def media_dataset(posters: list[str], trailers: list[str]):
    from recsys.data.dataset import Dataset

    n = max(len(posters), len(trailers))
    ids = pd.Index(np.arange(1, n + 1), name="item_id")
    items = pd.DataFrame({"title": [f"m{i}" for i in ids], "year": pd.array([2000] * n, dtype="Int64")}, index=ids)
    poster_series = pd.Series(posters + [None] * (n - len(posters)), index=ids, dtype=object)
    trailer_series = pd.Series(trailers + [None] * (n - len(trailers)), index=ids, dtype=object)
    ratings = pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [4.0], "timestamp": [0]})
    genres = pd.DataFrame({"Drama": np.ones(n, np.uint8)}, index=ids)
    return Dataset("bench-media", ratings, items, genres, posters=poster_series, trailers=trailer_series)


# ---- measurements --------------------------------------------------------------------------------
def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_posters(dataset, name: str, device: str, n_naive: int, engine: str = "local", preprocessing=None):
    import torch

    from recsys.data.posters import open_image
    from recsys.features.backbones import create_backbone
    from recsys.features.config import RunOptions, make_config
    from recsys.features.engines.local import run_settings
    from recsys.features.extract import extract
    from recsys.features.images import FeatureRunner
    from recsys.features.store import FeatureStore

    weights = "auto" if name.startswith("tf_efficientnet_lite") else "random"
    net = create_backbone(name, weights=weights)
    config = make_config(dataset, "posters", name, weights=weights, device=device, preprocessing=preprocessing)
    amp = config.precision == "amp"
    settings = run_settings(net, device, RunOptions(device=device), amp=amp)
    out = {"weights": "offline ImageNet" if weights == "auto" else "random-init (throughput only)"}
    # (c) model alone
    batch = torch.randn((settings.batch_size, *net.input_size))
    with FeatureRunner(net, settings) as runner:
        runner(batch)
        _sync(device)
        done, start = 0, time.perf_counter()
        while (
            time.perf_counter() - start < (3.0 if device.startswith("cuda") else 2.0) or done < 2 * settings.batch_size
        ):
            runner(batch)
            done += settings.batch_size
        _sync(device)
        out["model_ips"] = done / (time.perf_counter() - start)
    # (a) naive loop
    paths = dataset.posters.dropna().tolist()[:n_naive]
    net.model.to(device)
    with torch.inference_mode():
        net.extract(net.transform(open_image(paths[0]))[None].to(device))
        start = time.perf_counter()
        for path in paths:
            net.extract(net.transform(open_image(path))[None].to(device)).float().cpu()
        out["naive_ips"] = len(paths) / (time.perf_counter() - start)
    # (b) pipeline end to end
    with tempfile.TemporaryDirectory() as folder:
        run = RunOptions(
            device=device, model=net if engine == "local" else None, engine=engine, store=FeatureStore(folder)
        )
        start = time.perf_counter()
        result = extract(dataset, config, run)
        out["pipeline_ips"] = result.n_computed / (time.perf_counter() - start)
        out["loop_ips"] = result.images_per_s
        out["settings"] = result.settings
        out["preprocessing"] = config.preprocessing
        out["failures"] = len(result.failures)
    out["efficiency"] = out["pipeline_ips"] / out["model_ips"]
    net.model.to("cpu")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def bench_trailers(dataset, device: str, fps: float, engine: str = "local", sampling: str = "exact"):
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract
    from recsys.features.store import FeatureStore

    subset = replace(dataset, posters=None)
    config = make_config(subset, "trailers", "tf_efficientnet_lite0", fps=fps, device=device, sampling=sampling)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = extract(subset, config, RunOptions(device=device, engine=engine, store=FeatureStore(folder)))
        seconds = time.perf_counter() - start
    frames = int(result.status["n_frames"].sum())
    notes = sorted({n for n in result.status["status"] if n != "ok"})
    return {
        "frames": frames,
        "frames_per_s": frames / seconds,
        "loop_fps": result.images_per_s,
        "settings": result.settings,
        "notes": notes[:2],
    }


def main() -> int:
    from recsys.config import torch_device_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--posters", type=int, default=None, help="posters (default: 3000 on a GPU, 48 on a CPU)")
    parser.add_argument("--trailers", type=int, default=None, help="trailers (default: 32 on a GPU, 2 on a CPU)")
    parser.add_argument("--trailer-seconds", type=float, default=60.0)
    parser.add_argument("--gop", type=int, default=48, help="keyframe interval of the generated trailers (frames)")
    parser.add_argument(
        "--backbones", default=None, help="comma list of " + ",".join(BACKBONES) + " (CPU default: lite0)"
    )
    parser.add_argument("--naive", type=int, default=None, help="posters in the naive loop (default 256 GPU / 16 CPU)")
    parser.add_argument("--fps", default="1,3")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--media-dir", default=str(Path(tempfile.gettempdir()) / "recsys-bench-media"))
    args = parser.parse_args()

    device = args.device or torch_device_name()
    gpu = device.startswith("cuda")
    n_posters = args.posters or (3000 if gpu else 48)
    n_trailers = args.trailers if args.trailers is not None else (32 if gpu else 2)
    names = (args.backbones or (",".join(BACKBONES) if gpu else "lite0")).split(",")
    n_naive = args.naive or (256 if gpu else 16)
    media = Path(args.media_dir)
    start = time.perf_counter()
    posters = make_posters(media / "posters", n_posters)
    trailers = make_trailers(media / "trailers", n_trailers, args.trailer_seconds, args.gop) if n_trailers else []
    dataset = media_dataset(posters, trailers)
    card = ""
    if gpu:
        import torch

        card = torch.cuda.get_device_name(0).replace(" ", "_")
    print(
        f"device {device} {card}; {os.cpu_count()} cores; {n_posters} posters 500x750 JPEG, {n_trailers} trailers "
        f"1280x720 24 fps H.264 {args.trailer_seconds:g} s (gop {args.gop}); media ready in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    summary = {"device": device + (f"({card})" if card else "")}
    for short in names:
        r = bench_posters(dataset, BACKBONES[short], device, n_naive)
        print(
            f"posters {short} [{r['weights']}]: naive {r['naive_ips']:.1f}, pipeline {r['pipeline_ips']:.1f} "
            f"(loop {r['loop_ips']:.1f}; {r['preprocessing']}; {r['settings']}), model alone {r['model_ips']:.1f} "
            f"images/s; efficiency {r['efficiency']:.2f}",
            flush=True,
        )
        summary[f"posters_ips_{short}"] = f"{r['pipeline_ips']:.1f}"
        summary[f"posters_efficiency_{short}"] = f"{r['efficiency']:.2f}"
        if short == "lite0":
            summary["posters_naive_ips_lite0"] = f"{r['naive_ips']:.1f}"
            summary["posters_model_ips_lite0"] = f"{r['model_ips']:.1f}"
            if gpu:
                cpu_pil = bench_posters(dataset, BACKBONES[short], device, 8, preprocessing="cpu-pil")
                print(
                    f"posters lite0 with cpu-pil on {device}: pipeline {cpu_pil['pipeline_ips']:.1f} images/s",
                    flush=True,
                )
                summary["posters_ips_lite0_cpu_pil"] = f"{cpu_pil['pipeline_ips']:.1f}"
    rates = {}
    if trailers:
        for fps in [float(f) for f in args.fps.split(",")]:
            r = bench_trailers(dataset, device, fps)
            rates[fps] = r["frames_per_s"]
            print(
                f"trailers {fps:g} fps: {r['frames']} frames, {r['frames_per_s']:.1f} frames/s end to end (loop {r['loop_fps']:.1f}; {r['settings']}); notes {r['notes']}",
                flush=True,
            )
            summary[f"trailers_fps{fps:g}_frames_per_s"] = f"{r['frames_per_s']:.1f}"
        r = bench_trailers(dataset, device, 1.0, sampling="keyframes")
        print(f"trailers 1 fps keyframe sampling: {r['frames_per_s']:.1f} frames/s; notes {r['notes']}", flush=True)
        summary["trailers_fps1_keyframes_frames_per_s"] = f"{r['frames_per_s']:.1f}"
    ray_ratio = "not_measured"
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            ray_posters = bench_posters(dataset, BACKBONES["lite0"], device, 4, engine="ray")
            local_ips = float(summary["posters_ips_lite0"]) if "posters_ips_lite0" in summary else float("nan")
            ray_ratio = f"{ray_posters['pipeline_ips'] / local_ips:.2f}"
            print(
                f"posters lite0 on ray: {ray_posters['pipeline_ips']:.1f} images/s end to end ({ray_posters['settings']})",
                flush=True,
            )
            if trailers:
                r = bench_trailers(dataset, device, 1.0, engine="ray")
                print(f"trailers 1 fps on ray: {r['frames_per_s']:.1f} frames/s", flush=True)
                summary["ray_trailers_fps1_frames_per_s"] = f"{r['frames_per_s']:.1f}"
        except ImportError:
            print("ray not installed: pip install -r requirements-ray.txt", flush=True)
    summary["ray_ratio"] = ray_ratio
    if "posters_ips_lite0" in summary:
        summary["ml25m_posters_min"] = f"{ML25M_POSTERS / float(summary['posters_ips_lite0']) / 60:.1f}"
    for fps, rate in rates.items():
        frames = ML25M_TRAILERS * ML25M_TRAILER_SECONDS * fps
        summary[f"ml25m_trailers_fps{fps:g}_min"] = f"{frames / rate / 60:.0f}"
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
