"""Pages at ML-20M/25M scale: the stated sample an experiment page computes on, and its banner.

Two samples, both stated on the page with the command that runs the full data:

- :func:`experiment_sample` (Rating prediction, Fusion): the test side only, as the CLI does by
  default (``recsys.eval.sampling.sample_for_experiment``: at most 10,000 test users / 1,000,000
  test ratings, training data whole, so every sampled prediction equals the full run's);
- :func:`rating_sample` (Recommend): 5,000 random users with all their ratings, for models that
  score every user at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys.eval.page_sample import PAGE_MAX_RATINGS, PAGE_SAMPLE_USERS, RatingSample, sample_name, sample_users
from recsys.eval.sampling import DEFAULT_MAX_TEST, DEFAULT_MAX_USERS

# The limits the pages use, read at call time (tests shrink them to exercise the samples on small data).
LIMITS = {
    "max_test": DEFAULT_MAX_TEST,  # experiment pages: test ratings scored
    "max_users": DEFAULT_MAX_USERS,  # experiment pages: test users scored
    "max_ratings": PAGE_MAX_RATINGS,  # Recommend: beyond this many ratings, sample users
    "sample_users": PAGE_SAMPLE_USERS,
}

if TYPE_CHECKING:
    from recsys.data import Dataset


@st.cache_resource(show_spinner="Drawing a sample of users…", max_entries=4)
def _sample(token: str, _dataset: Dataset) -> RatingSample:
    return sample_users(_dataset.ratings, max_ratings=LIMITS["max_ratings"], users=LIMITS["sample_users"])


def rating_sample(dataset: Dataset) -> tuple[RatingSample, str]:
    """The ratings an experiment page uses (all of them up to 2 M; else 5,000 random users with all
    their ratings) and the name its splits are cached under."""
    from recsys.ui.data import dataset_token

    sample = _sample(dataset_token(dataset), dataset)
    return sample, sample_name(dataset.name, sample)


@st.cache_resource(show_spinner="Splitting the ratings and drawing the stated test sample…", max_entries=8)
def _experiment_sample(key: tuple, _make_splits):
    from recsys.eval.sampling import sample_for_experiment

    return sample_for_experiment(_make_splits(), max_test=LIMITS["max_test"], max_users=LIMITS["max_users"])


def experiment_sample(key: tuple, make_splits):
    """The folds an experiment page scores (``recsys.eval.sampling``'s defaults, the CLI's), kept for
    the server: `make_splits()` (reading a 25 M-rating split takes seconds) runs once per `key`
    (dataset token, split kind, folds)."""
    return _experiment_sample(key, make_splits)


def experiment_banner(sample, full_command: str) -> None:
    """State the test sample (when there is one) and the command for the full run."""
    if sample.sampled:
        st.info(
            f"**A stated sample:** {sample.description}. The full run: `{full_command} --full`.",
            icon=":material/filter_alt:",
        )


def sample_banner(sample: RatingSample, full_command: str) -> None:
    """Say that the page computes on a sample, how it was drawn, and the command for the full data."""
    if sample.sampled:
        st.info(
            f"**A stated sample:** this page computes on {sample.describe()}, so that it answers in seconds. "
            f"The full data: `{full_command}`.",
            icon=":material/filter_alt:",
        )
