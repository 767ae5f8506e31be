"""Honest numbers behind the pages: intervals, paired differences, R² by inner CV, takeaway sentences,
the plotly theme, URL encoding of settings, the progress bar that never goes backwards."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from recsys.eval import headline
from recsys.features.item_features import ItemFeatures
from recsys.viz import takeaways, theme


# ---- intervals -----------------------------------------------------------------------------------
def test_rmse_interval_covers_the_true_rmse_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_sd = 0.9  # errors ~ N(0, 0.9): the true RMSE is 0.9
    hits = 0
    for _ in range(400):
        estimate = headline.rmse_interval(rng.normal(0, true_sd, 300))
        hits += estimate.low <= true_sd <= estimate.high
        assert estimate.low <= estimate.value <= estimate.high and estimate.n == 300
    assert 0.92 <= hits / 400 <= 0.98


def test_paired_difference_tells_a_real_gap_from_noise():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1.0, 5000)
    worse = base * 1.05  # 5 % larger errors on the same ratings
    gap = headline.error_difference(worse, base)
    assert gap.excludes_zero and gap.value == pytest.approx(
        np.sqrt(np.mean(worse**2)) - np.sqrt(np.mean(base**2)), abs=1e-12
    )
    # two equally good models (same error law, correlated through the shared ratings): the interval
    # excludes zero in about 5 % of repetitions, as a 95 % interval should
    false_alarms = 0
    for _ in range(300):
        shared = rng.normal(0, 0.8, 1000)
        a, b = shared + rng.normal(0, 0.4, 1000), shared + rng.normal(0, 0.4, 1000)
        false_alarms += headline.error_difference(a, b).excludes_zero
    assert 0.01 <= false_alarms / 300 <= 0.09
    mae = headline.error_difference(worse, base, "mae")
    assert mae.value == pytest.approx(np.mean(np.abs(worse)) - np.mean(np.abs(base)))
    with pytest.raises(ValueError, match="same ratings"):
        headline.error_difference(base[:10], base[:11])


def test_rating_errors_equal_the_k_curve_and_baselines_pair_with_them():
    from recsys.eval.experiments import rmse_vs_k
    from recsys.eval.splits import make_splits

    rng = np.random.default_rng(2)
    users, items = np.meshgrid(np.arange(40), np.arange(30))
    frame = pd.DataFrame({"user_id": users.ravel(), "item_id": items.ravel()})
    frame = frame.sample(frac=0.5, random_state=0).reset_index(drop=True)
    frame["rating"] = np.clip(np.round(3 + rng.normal(0, 1, len(frame))), 1, 5).astype(np.float32)
    frame["timestamp"] = 0
    splits = make_splits(frame, "holdout", seed=0)
    genres = ItemFeatures(np.arange(30), rng.integers(0, 2, (30, 5)).astype(float), name="genres")
    reps = {"ratings": None, "genres": genres}
    curve = rmse_vs_k(splits, reps, ks=(5, 10))
    errors = headline.rating_errors(splits, reps, {"ratings": 10, "genres": 5})
    assert len(errors) == len(splits[0].test) and {"global mean", "user mean"} <= set(errors.columns)
    for name, k in (("ratings", 10), ("genres", 5)):
        expected = curve[(curve["representation"] == name) & (curve["k"] == k)]["rmse"].iloc[0]
        assert headline.rmse_interval(errors[name]).value == pytest.approx(expected)
    table = headline.headline_table(errors, "rmse", reference="ratings", ks={"ratings": 10, "genres": 5})
    row = table.set_index("model").loc["genres"]
    assert row["vs reference"] == pytest.approx(row["RMSE"] - table.set_index("model").loc["ratings", "RMSE"])
    assert row["CI low"] <= row["RMSE"] <= row["CI high"] and row["n"] == len(errors)


def test_one_pass_curve_and_errors_equal_the_two_separate_experiments():
    from recsys.eval.experiments import rmse_vs_k
    from recsys.eval.splits import make_splits

    rng = np.random.default_rng(7)
    users, items = np.meshgrid(np.arange(50), np.arange(35))
    frame = pd.DataFrame({"user_id": users.ravel(), "item_id": items.ravel()}).sample(frac=0.5, random_state=2)
    frame["rating"] = np.clip(np.round(3 + rng.normal(0, 1, len(frame))), 1, 5).astype(np.float32)
    frame["timestamp"] = 0
    splits = make_splits(frame.reset_index(drop=True), "kfold", seed=0, n_folds=3)
    genres = ItemFeatures(np.arange(35), rng.integers(0, 2, (35, 4)).astype(float), name="genres")
    reps = {"ratings": None, "genres": genres}
    seen = []
    curve, errors = headline.k_curve_with_errors(
        splits, reps, ks=(5, 10, 20), progress=lambda d, t, m="": seen.append(d / t)
    )
    expected = rmse_vs_k(splits, reps, ks=(5, 10, 20))
    pd.testing.assert_frame_equal(curve, expected)
    assert seen == sorted(seen) and seen[-1] == 1.0  # the bar only moves forward
    for metric in ("rmse", "mae"):
        ks = errors[metric].attrs["ks"]
        means = expected.groupby(["representation", "k"])[metric].mean()
        assert ks == {name: int(means.loc[name].idxmin()) for name in reps}
        separate = headline.rating_errors(splits, reps, ks)
        pd.testing.assert_frame_equal(errors[metric], separate, check_like=True)


def test_fusion_gain_reads_cf_at_w1_and_the_best_w_per_fold():
    rows = []
    for fold in range(4):
        for w, value in ((0.0, 1.2), (0.5, 0.95 + 0.01 * fold), (1.0, 1.0 + 0.01 * fold)):
            rows.append({"fold": fold, "weight": w, "subset": "all", "rmse": value, "mae": value, "n": 100 + fold})
    gain = headline.fusion_gain(pd.DataFrame(rows))
    assert gain["best_w"] == 0.5 and gain["cf"] == pytest.approx(1.015) and gain["content"] == pytest.approx(1.2)
    assert gain["gain"].value == pytest.approx(0.05) and gain["gain"].excludes_zero
    assert gain["n_per_fold"] == [100, 101, 102, 103] and gain["n"] == 406 and gain["folds"] == 4


def test_genre_precision_interval_equals_the_curve_and_samples_queries():
    from recsys.eval.neighbours import genre_precision_curve

    rng = np.random.default_rng(3)
    ids = np.arange(60)
    genres = pd.DataFrame(rng.integers(0, 2, (60, 4)), index=pd.Index(ids, name="item_id"), columns=list("ABCD"))
    genres.iloc[:, 0] = np.maximum(genres.iloc[:, 0], 1 - genres.iloc[:, 1:].max(axis=1))  # every item has a genre
    features = ItemFeatures(ids, rng.normal(size=(60, 6)), "noise")
    full = headline.genre_precision_interval(features, genres, 5, "euclidean")
    reference = genre_precision_curve(features, genres, 5, "euclidean")
    assert np.allclose(full["genre_precision"], reference["genre_precision"])
    assert (full["low"] <= full["genre_precision"]).all() and (full["genre_precision"] <= full["high"]).all()
    sampled = headline.genre_precision_interval(features, genres, 5, "euclidean", max_queries=20)
    assert sampled["sampled"].all() and (sampled["queries"] == 20).all() and (sampled["candidates"] == 60).all()


def test_embedding_r2_uses_inner_cv_and_stays_honest_on_wide_noise():
    from recsys.eval.experiments import embedding_r2

    rng = np.random.default_rng(4)
    n = 300
    signal = rng.normal(size=n)
    ratings = pd.DataFrame(
        {"user_id": np.arange(n), "item_id": np.arange(n), "rating": 3 + 0.5 * signal + rng.normal(0, 0.3, n)}
    )
    wide_noise = ItemFeatures(np.arange(n), rng.normal(size=(n, 400)), "noise")  # more dims than items per fold
    useful = ItemFeatures(np.arange(n), np.c_[signal, rng.normal(size=(n, 50))], "useful")
    table = embedding_r2(ratings, {"noise": wide_noise, "useful": useful}).set_index("representation")
    # least squares on 400 noise dims scores a hugely negative R²; the penalty chosen by inner CV does not
    ols = embedding_r2(ratings, {"noise": wide_noise}, alpha=0.0)
    assert ols["r2_cv"].iloc[0] < -1 and table.loc["noise", "r2_cv"] > -0.05
    assert table.loc["useful", "r2_cv_low"] > 0.5 and table.loc["noise", "alpha"] > table.loc["useful", "alpha"]
    assert table.loc["useful", "r2_cv_low"] <= table.loc["useful", "r2_cv"] <= table.loc["useful", "r2_cv_high"]
    with pytest.raises(ValueError, match="alpha must be"):
        embedding_r2(ratings, {"useful": useful}, alpha="auto")


def test_group_f1_intervals_bracket_the_paper_formula():
    from recsys.eval.groups import summarise

    rng = np.random.default_rng(5)
    rows = []
    for method in ("group recommender", "popular in group"):
        for user in range(200):
            rows.append(
                {
                    "user_id": user,
                    "precision": rng.uniform(0, 0.4 if method == "popular in group" else 0.2),
                    "recall": rng.uniform(0, 0.3),
                    "age_band": "18-24" if user % 2 else "25-34",
                    "gender": "F" if user % 3 else "M",
                    "method": method,
                }
            )
    per_user = pd.DataFrame(rows)
    table = headline.group_f1_intervals(per_user, n_boot=300)
    assert table[["facet", "group", "method", "f1"]].equals(summarise(per_user)[["facet", "group", "method", "f1"]])
    assert ((table["f1_low"] <= table["f1"]) & (table["f1"] <= table["f1_high"])).all()
    sentence = takeaways.audience_takeaway(table, "group recommender", "popular in group")
    assert sentence.startswith("The reproduced method loses to its baseline") and "200 users" in sentence


# ---- takeaway sentences ------------------------------------------------------------------------------
def _table(posters: float, genres: float, separated: bool) -> pd.DataFrame:
    rows = [
        {"model": "genres", "K": 40, "RMSE": genres, "CI low": genres - 0.01, "CI high": genres + 0.01, "n": 20000},
        {"model": "poster · lite0", "K": 60, "RMSE": posters, "CI low": posters - 0.01, "CI high": posters + 0.01},
        {"model": "user mean", "K": None, "RMSE": 1.04, "CI low": 1.03, "CI high": 1.05, "n": 20000},
    ]
    table = pd.DataFrame(rows)
    table["n"] = 20000
    table["vs reference"] = table["RMSE"] - genres
    table["diff low"] = table["vs reference"] - (0.001 if separated else 0.003)
    table["diff high"] = table["vs reference"] + (0.001 if separated else 0.003)
    table["separated"] = [False, separated, True]
    return table


def test_rating_takeaway_says_when_a_difference_is_inside_its_interval():
    sentence = takeaways.rating_takeaway(_table(0.9495, 0.9481, separated=False), "rmse", "ml-100k")
    assert sentence.startswith("poster · lite0 does not beat genres on ml-100k: RMSE 0.9495 vs 0.9481")
    assert "inside the 95 % interval" in sentence and "n = 20,000" in sentence and "user-mean baseline" in sentence
    told = takeaways.rating_takeaway(_table(0.9600, 0.9481, separated=True), "rmse", "ml-100k")
    assert told.startswith("genres predicts best on ml-100k") and "outside the 95 % interval" in told


def test_fusion_takeaway_explains_cf_worse_than_user_mean_on_cold_items():
    gain = {
        "gain": headline.Estimate(0.3, 0.25, 0.35, 5),
        "metric": "rmse",
        "best_w": 0.2,
        "cf": 1.11,
        "fused": 0.81,
        "content": 0.82,
        "folds": 5,
        "n": 19598,
    }
    sentence = takeaways.fusion_takeaway(gain, {"user mean": 1.02, "global mean": 1.11}, "cold-start")
    assert "lowers RMSE from 1.1100 to 0.8100" in sentence and "n = 19,598" in sentence
    assert "worse than each user's mean" in sentence and "falls back to the global mean" in sentence
    flat = dict(gain, gain=headline.Estimate(0.002, -0.001, 0.005, 5))
    assert "not told apart from CF alone" in takeaways.fusion_takeaway(flat, {"user mean": 1.2}, "all")


def test_neighbours_and_r2_takeaways_carry_numbers_and_intervals():
    rows = [
        {"representation": "poster · lite0", "n": 5, "genre_precision": 0.461, "low": 0.447, "high": 0.475},
        {"representation": "poster · raw pixels", "n": 5, "genre_precision": 0.384, "low": 0.371, "high": 0.398},
    ]
    for row in rows:
        row.update(chance=0.348, queries=1668)
    sentence = takeaways.neighbours_takeaway(rows, "ml-100k")
    assert sentence.startswith("On ml-100k, poster · lite0 finds same-genre neighbours more often than poster · raw")
    r2 = pd.DataFrame(
        [
            {"representation": "genre", "n_items": 1682, "r2_cv": 0.063, "r2_cv_low": 0.036, "r2_cv_high": 0.09},
            {"representation": "poster", "n_items": 1668, "r2_cv": 0.011, "r2_cv_low": -0.001, "r2_cv_high": 0.02},
        ]
    ).assign(folds=5)
    text = takeaways.r2_takeaway(r2)
    assert "6.3 %" in text and "poster 0.011 [-0.001, 0.020], not told apart from zero" in text


# ---- theme -------------------------------------------------------------------------------------------
def test_theme_sizes_subtitle_and_distinct_genre_colours():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], mode="lines"), layout=dict(title="RMSE vs K"))
    theme.apply(fig, presentation=True, dataset="ml-100k", protocol="80/20 holdout", date=datetime.date(2026, 5, 1))
    assert fig.layout.title.subtitle.text == "ml-100k · 80/20 holdout · 2026-05-01"
    assert fig.layout.xaxis.tickfont.size >= 18 and fig.layout.title.font.size > fig.layout.xaxis.tickfont.size
    assert fig.layout.template.layout.font.size == 20
    colours = theme.genre_colour_map(["Drama", "Crime", "Thriller", "Children's", "(none)", "Zombie"])
    assert len(set(colours.values())) == 6 and colours["(none)"] == theme.MISSING_COLOUR
    assert colours["Children's"] == theme.genre_colour_map(["Children"])["Children"]  # ML-100K vs ML-20M spelling

    def luminance(hex_colour):
        r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert len(theme.DISTINCT) == 20 and max(luminance(c) for c in theme.DISTINCT) < 0.8  # no near-white on white
    config = theme.export_config("x")
    assert config["toImageButtonOptions"]["width"] == 1600 and config["toImageButtonOptions"]["scale"] == 2


# ---- URL state and progress ---------------------------------------------------------------------------
def test_url_encoding_of_labels_lists_and_numbers_round_trips():
    from recsys.ui import url_state

    tokens = {"ratings only (user KNN)": "ratings", "poster · lite0 (64 items)": "poster:tf_efficientnet_lite0"}
    value = ["ratings only (user KNN)", "poster · lite0 (64 items)", "genre one-hot"]
    text = url_state.encode(value, multi=True, tokens=tokens)
    assert text == "ratings,poster:tf_efficientnet_lite0,genre one-hot"
    assert url_state.decode(text, default=["x"], multi=True, tokens=tokens) == value
    assert url_state.decode("50", default=1) == 50 and url_state.encode(0.5) == "0.5" and url_state.encode(1.0) == "1"
    assert url_state.decode("1", default=False) is True and url_state.encode(True) == "1"
    with pytest.raises(ValueError):
        url_state.decode("Star Wars", default=1)


def test_progress_never_goes_backwards_across_phases_and_tells_time_left():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from recsys import ui

        clock = iter([0.0] + [float(t) for t in range(0, 200)]).__next__
        progress = ui.StreamlitProgress("Extracting…", min_interval=0, clock=clock)
        shown = []
        for done in range(0, 21):  # calibration: 0..20 of 32 (62 %)
            progress(done, 32, "calibrating")
            shown.append(progress.shown)
        for done in range(0, 101, 10):  # extraction: a new total starts the next phase
            progress(done, 100, "images")
            shown.append(progress.shown)
        st.session_state["shown"] = shown
        st.session_state["left"] = progress.time_left(50, 100)

    app = AppTest.from_function(script).run()
    assert not app.exception
    shown = app.session_state["shown"]
    assert all(b >= a for a, b in zip(shown, shown[1:])) and shown[-1] == pytest.approx(1.0)
    assert app.session_state["left"] > 0  # seconds left in the phase, at its pace so far


def test_cold_start_fallback_share_counts_only_pairs_the_fm_cannot_score():
    """issue 11.7: an FM scores a cold item from its side features (not a fallback); only items
    without any side features fall back, and cold_start_rmse's fallback_share says exactly that."""
    from recsys.eval.experiments import cold_start_rmse
    from recsys.eval.splits import make_splits
    from recsys.models.fm import FactorizationMachine

    rng = np.random.default_rng(6)
    users, items = np.meshgrid(np.arange(60), np.arange(40))
    frame = pd.DataFrame({"user_id": users.ravel(), "item_id": items.ravel()}).sample(frac=0.6, random_state=1)
    frame["rating"] = np.clip(np.round(3 + rng.normal(0, 1, len(frame))), 1, 5).astype(np.float32)
    frame["timestamp"] = 0
    splits = make_splits(frame.reset_index(drop=True), "cold_items", seed=0, item_share=0.25)
    fold = splits[0]
    cold_items = np.setdiff1d(fold.test["item_id"].unique(), fold.train["item_id"].unique())
    all_items = np.arange(40)
    covered = np.setdiff1d(all_items, cold_items[: len(cold_items) // 2])  # half the cold items lack features
    side = ItemFeatures(covered, rng.normal(size=(len(covered), 4)), "side")
    fm = FactorizationMachine(n_factors=2, side_features={"side": side}, n_epochs=6, burn_in=2, seed=0)
    result = cold_start_rmse([fold], {"FM": fm}).set_index("model")
    cold = fold.test[fold.test["item_id"].isin(cold_items)]
    expected = float((~cold["item_id"].isin(covered)).mean())
    assert 0 < expected < 1
    assert result.loc["FM", "fallback_share"] == pytest.approx(expected)
