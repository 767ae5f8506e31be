"""Time the Audience page's work: face models, one photo, NMS, and the ML-100K group evaluation.

Faces: loading MTCNN + the age/gender ONNX graphs + the mini-Xception, then analysing
scikit-image's astronaut() photo (detect -> align -> age/gender -> emotion), median of --repeat.
NMS: our plain-tensor NMS (the fallback) against torchvision's compiled op on the same
2,000 random boxes. Evaluation: `evaluate_groups` on ML-100K (the same call as
`python -m recsys audience-eval` and the page), compared with its popularity peer's quality.

    .venv/bin/python bench/audience.py [--data-dir DIR] [--repeat N]

Last line: models_load_s=… photo_s=… nms_plain_ms=… nms_torchvision_ms=… eval_s=… f1_group=… f1_popular=… f1_svd_all_clusters=…
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _data import SHARED_DATA_DIR


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from skimage import data

    from recsys.data import load_dataset
    from recsys.eval.groups import evaluate_groups
    from recsys.faces.detect import nms
    from recsys.faces.pipeline import AudienceAnalyzer

    start = time.perf_counter()
    analyzer = AudienceAnalyzer()
    load_s = time.perf_counter() - start
    image = data.astronaut()
    analyzer.analyse_image(image)  # warm-up
    photo = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        faces = analyzer.analyse_image(image).faces
        photo.append(time.perf_counter() - start)
    print(f"faces: {[f.label() for f in faces]}")

    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=generator) * 500
    boxes = torch.cat([xy, xy + torch.rand(2000, 2, generator=generator) * 60 + 10], dim=1)
    scores = torch.rand(2000, generator=generator)
    timings = {}
    for name in ("plain", "torchvision"):
        if name == "torchvision":
            from torchvision.ops import nms as run
        else:
            run = nms
        kept = run(boxes, scores, 0.5)
        start = time.perf_counter()
        for _ in range(args.repeat):
            run(boxes, scores, 0.5)
        timings[name] = (time.perf_counter() - start) / args.repeat * 1000
        timings[name + "_kept"] = len(kept)
    assert timings["plain_kept"] == timings["torchvision_kept"]

    dataset = load_dataset("ml-100k", data_dir=args.data_dir)
    start = time.perf_counter()
    table = evaluate_groups(dataset, n=10, test_fraction=0.2, seed=0)
    eval_s = time.perf_counter() - start
    overall = table[table["facet"] == "all"].set_index("method")
    print(table.round(4).to_string(index=False))
    print(
        f"models_load_s={load_s:.2f} photo_s={statistics.median(photo):.3f} "
        f"nms_plain_ms={timings['plain']:.1f} nms_torchvision_ms={timings['torchvision']:.1f} "
        f"eval_s={eval_s:.1f} f1_group={overall.loc['group recommender', 'f1']:.4f} "
        f"f1_popular={overall.loc['popular in group', 'f1']:.4f} "
        f"f1_svd_all_clusters={overall.loc['group SVD, all clusters', 'f1']:.4f}"
    )


if __name__ == "__main__":
    np.random.seed(0)
    main()
