"""Multimodal movie recommendation: data, CNN item features, recommenders, evaluation, figures.

Data flow (one direction): Dataset -> FeatureStore -> models -> experiments (tidy frames) -> figures -> pages.
"""

__version__ = "0.1.0"
