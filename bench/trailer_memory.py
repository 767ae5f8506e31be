"""Peak memory of extracting one long video at 1 fps (issue 14: a 2-hour video must stay under 2 GB).

    .venv/bin/python bench/trailer_memory.py [--hours 2] [--backbone mobilenetv3_small_050]

Generates a 32x32 MPEG-4 video of --hours (PyAV, 4 fps: 28,800 frames for 2 hours; the sampled
frames are what the model sees, 7,200 at 1 fps), then extracts it in a fresh process and reads
that process's peak RSS (ru_maxrss). The backbone defaults to a small random-weight network so
the run takes minutes on a CPU; memory does not depend on it beyond its own size (pass
--backbone tf_efficientnet_lite0 for the product's default). A short video is measured the same
way, so the line also shows how much the long one adds. Last line: key=value summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

CHILD = """
import json, resource, sys, time, pandas as pd, torch
from recsys.data.dataset import Dataset
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract
from recsys.features.store import FeatureStore
path, store, backbone = sys.argv[1], sys.argv[2], sys.argv[3]
items = pd.DataFrame({"title": ["long"], "year": pd.array([2000], dtype="Int64")}, index=pd.Index([1], name="item_id"))
dataset = Dataset("memory", pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [3.0], "timestamp": [0]}),
                  items, pd.DataFrame({"Drama": [1]}, index=items.index),
                  trailers=pd.Series([path], index=items.index, dtype=object))
weights = "auto" if backbone.startswith("tf_efficientnet_lite") else "random"
config = make_config(dataset, "trailers", backbone, weights=weights, fps=1, device="cpu")
start = time.perf_counter()
result = extract(dataset, config, RunOptions(device="cpu", store=FeatureStore(store), batch_size=32))
print(json.dumps({"frames": int(result.status["n_frames"].sum()), "seconds": time.perf_counter() - start,
                  "status": result.status["status"].iloc[0],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_video(path: Path, seconds: float, rate: int = 4) -> None:
    if path.exists():
        return
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        image = np.zeros((32, 32, 3), np.uint8)
        for index in range(int(seconds * rate)):
            image[..., 0] = index % 256
            image[..., 1] = (index // 256) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)


def measure(path: Path, backbone: str) -> dict:
    with tempfile.TemporaryDirectory() as store:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), store, backbone], capture_output=True, text=True, check=False
        )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--backbone", default="mobilenetv3_small_050")
    parser.add_argument("--media-dir", default=str(Path(tempfile.gettempdir()) / "recsys-bench-media"))
    args = parser.parse_args()
    folder = Path(args.media_dir)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    long_path = folder / f"long_{args.hours:g}h_32px.mp4"
    short_path = folder / "short_60s_32px.mp4"
    write_video(long_path, args.hours * 3600)
    write_video(short_path, 60)
    print(f"videos ready in {time.perf_counter() - start:.0f} s; backbone {args.backbone}", flush=True)
    short = measure(short_path, args.backbone)
    print(f"60 s video: {short}", flush=True)
    long = measure(long_path, args.backbone)
    print(f"{args.hours:g} h video: {long}", flush=True)
    summary = {
        "hours": f"{args.hours:g}",
        "frames": long["frames"],
        "peak_rss_mb": f"{long['peak_mb']:.0f}",
        "short_peak_rss_mb": f"{short['peak_mb']:.0f}",
        "added_mb": f"{long['peak_mb'] - short['peak_mb']:.0f}",
        "under_2gb": long["peak_mb"] < 2048,
        "seconds": f"{long['seconds']:.0f}",
        "backbone": args.backbone,
    }
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
