"""Poster feature extraction: naive loop vs the pipeline vs the model alone, on the same posters.

    .venv/bin/python bench/extract_throughput.py [--data-dir ../shared/data] [--n 256] [--backbone tf_efficientnet_lite0]

(a) naive: for each poster, load, preprocess and predict one image at a time with torch's
    default settings, like the blog post's code;
(b) pipeline: extract() end to end (decoding threads, calibrated batch
    size / memory format / threads, forward, chunked writes to a temporary feature store);
(c) model: the forward pass alone on pre-loaded tensors at the calibrated setting.

efficiency = (b)/(c) (>= 0.8: data handling is not the bottleneck), ratio = (b)/(a), and the
largest absolute difference between the features of (a) and (b). Last line: key=value summary.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from _data import SHARED_DATA_DIR

from recsys.config import torch_device_name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--reuse-calibration",
        action="store_true",
        help="use the remembered setting instead of measuring the best one in this run",
    )
    args = parser.parse_args()

    from recsys.data import load_dataset
    from recsys.data.posters import open_image
    from recsys.features.backbones import create_backbone
    from recsys.features.calibration import calibrate
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract
    from recsys.features.images import FeatureRunner
    from recsys.features.store import FeatureStore

    device = args.device or torch_device_name()
    dataset = load_dataset(args.dataset, args.data_dir)
    item_ids = dataset.items_with_poster()[: args.n].to_numpy()
    paths = dataset.posters.loc[item_ids].tolist()
    backbone = create_backbone(args.backbone)
    print(
        f"{len(item_ids)} posters of {dataset.name}; {backbone.name} ({backbone.weights_id}); device {device}; "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )

    # (c) first: calibration in this run (then remembered) picks the setting the pipeline will use too.
    settings, record = calibrate(backbone, device, force=not args.reuse_calibration)
    print(f"calibrated: {settings.label()} from {len(record['measurements'])} measurements", flush=True)
    tensors = torch.stack([backbone.transform(open_image(p)) for p in paths])
    with FeatureRunner(backbone, settings) as runner:
        runner(tensors[: settings.batch_size])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(tensors), settings.batch_size):
            runner(tensors[i : i + settings.batch_size])
        if device == "cuda":
            torch.cuda.synchronize()
        model_ips = len(tensors) / (time.perf_counter() - start)
    print(f"(c) model alone: {model_ips:.1f} images/s", flush=True)

    # (a) naive loop, torch defaults (contiguous, all threads, batch 1).
    backbone.model.to(device, memory_format=torch.contiguous_format)
    naive = []
    with torch.inference_mode():
        backbone.extract(tensors[:1].to(device))  # warm-up, as for the others
        start = time.perf_counter()
        for path in paths:
            batch = backbone.transform(open_image(path))[None].to(device)
            naive.append(backbone.extract(batch).float().cpu().numpy()[0])
        naive_ips = len(paths) / (time.perf_counter() - start)
    naive = np.stack(naive)
    print(f"(a) naive loop: {naive_ips:.1f} images/s", flush=True)

    # (b) the pipeline end to end into a temporary store.
    subset = _subset(dataset, item_ids)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        config = make_config(subset, "posters", backbone.name, device=device)
        result = extract(subset, config, RunOptions(device=device, model=backbone, store=FeatureStore(folder)))
        pipeline_seconds = time.perf_counter() - start
    pipeline_ips = result.n_computed / pipeline_seconds
    print(
        f"(b) pipeline: {pipeline_ips:.1f} images/s end to end ({result.settings}; compute loop "
        f"{result.images_per_s:.1f} images/s), failures {len(result.failures)}",
        flush=True,
    )

    order = {item: row for row, item in enumerate(result.features.item_ids)}
    pipeline = result.features.matrix[[order[i] for i in item_ids]]
    max_abs_diff = float(np.abs(pipeline - naive).max())
    summary = {
        "pipeline_ips": f"{pipeline_ips:.1f}",
        "naive_ips": f"{naive_ips:.1f}",
        "model_ips": f"{model_ips:.1f}",
        "efficiency": f"{pipeline_ips / model_ips:.2f}",
        "ratio": f"{pipeline_ips / naive_ips:.2f}",
        "max_abs_diff": f"{max_abs_diff:.2e}",
    }
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


def _subset(dataset, item_ids):
    from dataclasses import replace

    items = dataset.items.loc[item_ids]
    return replace(
        dataset,
        name=f"{dataset.name}-bench{len(item_ids)}",
        items=items,
        genres=dataset.genres.loc[item_ids],
        posters=dataset.posters.loc[item_ids],
        trailers=dataset.trailers.loc[item_ids],
        ratings=dataset.ratings[dataset.ratings["item_id"].isin(item_ids)],
    )


if __name__ == "__main__":
    raise SystemExit(main())
