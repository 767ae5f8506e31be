"""Pages at ML-20M/25M scale: the stated sample an experiment page computes on, and its banner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys.eval.page_sample import RatingSample, sample_name, sample_users

if TYPE_CHECKING:
    from recsys.data import Dataset


@st.cache_resource(show_spinner="Drawing a sample of users…", max_entries=4)
def _sample(token: str, _dataset: Dataset) -> RatingSample:
    return sample_users(_dataset.ratings)


def rating_sample(dataset: Dataset) -> tuple[RatingSample, str]:
    """The ratings an experiment page uses (all of them up to 2 M; else 5,000 random users with all
    their ratings) and the name its splits are cached under."""
    from recsys.ui.data import dataset_token

    sample = _sample(dataset_token(dataset), dataset)
    return sample, sample_name(dataset.name, sample)


def sample_banner(sample: RatingSample, full_command: str) -> None:
    """Say that the page computes on a sample, how it was drawn, and the command for the full data."""
    if sample.sampled:
        st.info(
            f"**A stated sample:** this page computes on {sample.describe()}, so that it answers in seconds. "
            f"The full data: `{full_command}`.",
            icon=":material/filter_alt:",
        )
