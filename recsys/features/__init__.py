"""Item features: CNN backbones over posters and trailer frames, baselines, the on-disk store, reductions.

backbones.py (timm registry, weight sources incl. offline EfficientNet-Lite), images.py (batched
image pipeline), calibration.py (batch size / memory format / threads per device), video.py (fps
sampling, mean and window aggregation), extract.py (the high-level API: extract_poster_features,
extract_trailer_features, load_cached_features), store.py (chunked resumable cache), baselines.py,
reduce.py, commands.py (``python -m recsys extract``). Importing this package loads no torch.
"""
