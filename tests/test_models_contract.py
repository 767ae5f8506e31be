"""The estimator contract of recsys.models.base, checked on every model class.

- parameters round-trip through get_params / clone / set_params;
- one NotFittedError wording before fit;
- one validator per kind of parameter, so the same slip gets the same refusal everywhere;
- fallback flags travel with the predictions (no per-call state on the model), so two callers
  sharing one fitted model never read each other's flags;
- every top-N model returns the same frame;
- the implicit-feedback rankers (MostPop, ItemKNN, BPR, VBPR) follow the same contract.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidParameter, NotFittedError, RecsysError
from recsys.features.item_features import ItemFeatures
from recsys.models.base import (
    TOPN_COLUMNS,
    BaseEstimator,
    Predictions,
    RatingPredictor,
    clone,
    predict_with_fallback,
    reports_fallback,
)
from recsys.models.bpr import BPR, VBPR
from recsys.models.content import ContentPredictor
from recsys.models.fm import FactorizationMachine
from recsys.models.fusion import LinearFusion
from recsys.models.groups import GenreClusters, GroupRecommender
from recsys.models.hybrid import HybridUserKNN
from recsys.models.item_knn import ItemKNN
from recsys.models.knn import UserKNN
from recsys.models.means import GlobalMeanPredictor, UserMeanPredictor
from recsys.models.mf import BiasedMF
from recsys.models.popularity import MostPop
from recsys.models.profiles import ProfileKNN
from recsys.models.topn import PredictorTopN

GENRES = ["Action", "Comedy", "Drama"]


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    users, items = np.nonzero(rng.random((30, 40)) < 0.4)
    return pd.DataFrame(
        {"user_id": users + 1, "item_id": items + 1, "rating": rng.integers(1, 6, len(users)).astype(float)}
    )


@pytest.fixture(scope="module")
def features() -> ItemFeatures:
    return ItemFeatures(np.arange(1, 41), np.random.default_rng(5).random((40, 6)), "random")


@pytest.fixture(scope="module")
def people() -> tuple[pd.DataFrame, pd.DataFrame]:
    users = pd.DataFrame(
        {"age": [20 + (u % 3) * 15 for u in range(1, 31)], "gender": ["F" if u % 2 else "M" for u in range(1, 31)]},
        index=pd.Index(range(1, 31), name="user_id"),
    )
    genres = pd.DataFrame(
        np.eye(3, dtype=np.uint8)[np.arange(40) % 3], index=pd.Index(range(1, 41), name="item_id"), columns=GENRES
    )
    return users, genres


def all_estimators(features) -> dict[str, BaseEstimator]:
    """One non-default instance of every model class."""
    return {
        "UserKNN": UserKNN(k=7, similarity="pearson", min_support=2, mean_centred=False, positive_only=False),
        "ProfileKNN": ProfileKNN(features, k=6, relevance=3.5),
        "ContentPredictor": ContentPredictor(features, top_m=4),
        "LinearFusion": LinearFusion(UserKNN(k=5), ContentPredictor(features), w=0.3),
        "UserMeanPredictor": UserMeanPredictor(),
        "GlobalMeanPredictor": GlobalMeanPredictor(),
        "HybridUserKNN": HybridUserKNN(features, alpha=0.25, k=4, n=3, centre_features=True),
        "PredictorTopN": PredictorTopN(UserKNN(k=3)),
        "GroupRecommender": GroupRecommender(n_components=3, min_group_size=2, ordering="all_clusters"),
        "GenreClusters": GenreClusters(n_clusters=3, k_range=(2, 5)),
        "BiasedMF": BiasedMF(n_factors=3, n_epochs=2),
        "FactorizationMachine": FactorizationMachine(n_factors=2, n_epochs=3, burn_in=1),
        "MostPop": MostPop(positive_threshold=3.5),
        "ItemKNN": ItemKNN(k=7, shrink=2.0, positive_threshold=4.0),
        "BPR": BPR(k=4, n_epochs=2, batch_size=64, negatives="unrated", device="cpu", seed=3),
        "VBPR": VBPR(features, k=4, k2=3, n_epochs=2, n_components=None, feature_scaling="standard", device="cpu"),
    }


RANKERS = ["MostPop", "ItemKNN", "BPR", "VBPR"]


# ---- parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "UserKNN",
        "ProfileKNN",
        "ContentPredictor",
        "LinearFusion",
        "UserMeanPredictor",
        "GlobalMeanPredictor",
        "HybridUserKNN",
        "PredictorTopN",
        "GroupRecommender",
        "GenreClusters",
        "BiasedMF",
        "FactorizationMachine",
        *RANKERS,
    ],
)
def test_get_params_and_clone_round_trip(name, features):
    model = all_estimators(features)[name]
    params = model.get_params()
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    copied = copy.get_params()
    assert sorted(copied) == sorted(params)
    for key, value in params.items():
        if isinstance(value, BaseEstimator):  # nested estimators are cloned, not shared
            assert copied[key] is not value and copied[key].get_params() == value.get_params()
        else:
            assert copied[key] is value or copied[key] == value
    # set_params changes exactly the named parameter; unknown names are refused
    assert repr(copy) == repr(model)
    with pytest.raises(InvalidParameter, match="has no parameter 'nonsense'"):
        copy.set_params(nonsense=1)


def test_clone_of_a_fitted_model_is_unfitted_and_overrides_apply(train, features):
    fitted = LinearFusion(UserKNN(k=5), ContentPredictor(features), w=0.3).fit(train)
    copy = clone(fitted, w=0.8)
    assert copy.w == 0.8 and fitted.w == 0.3
    with pytest.raises(NotFittedError):
        copy.predict([1], [1])
    assert copy.get_params(deep=True)["cf_model__k"] == 5
    copy.set_params(cf_model__k=9)
    assert copy.cf_model.k == 9 and fitted.cf_model.k == 5


def test_clone_refuses_what_is_not_an_estimator():
    with pytest.raises(InvalidParameter, match="not an estimator"):
        clone(lambda: UserKNN())


# ---- fitted or not --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda f: UserKNN(),
        lambda f: ProfileKNN(f),
        lambda f: ContentPredictor(f),
        lambda f: LinearFusion(UserKNN(), ContentPredictor(f)),
        lambda f: UserMeanPredictor(),
        lambda f: GlobalMeanPredictor(),
    ],
    ids=["UserKNN", "ProfileKNN", "ContentPredictor", "LinearFusion", "UserMeanPredictor", "GlobalMeanPredictor"],
)
def test_not_fitted_has_one_wording(make, features):
    model = make(features)
    name = type(model).__name__
    with pytest.raises(NotFittedError, match=rf"^{name} is not fitted yet: call fit\(train\) first$"):
        model.predict([1], [1])
    with pytest.raises(RecsysError):  # what the CLI and the pages catch
        model.predict([1], [1], return_fallback=True)


@pytest.mark.parametrize(
    "model", [HybridUserKNN(), PredictorTopN(UserKNN()), GroupRecommender()], ids=lambda m: type(m).__name__
)
def test_top_n_models_not_fitted_have_the_same_wording(model):
    with pytest.raises(NotFittedError, match=rf"^{type(model).__name__} is not fitted yet: call fit\(train\) first$"):
        model.recommend([1], 5)


@pytest.mark.parametrize("name", RANKERS)
def test_rankers_not_fitted_have_the_same_wording(name, features):
    model = all_estimators(features)[name]
    for call in (lambda: model.recommend([1], 5), lambda: model.score([1])):
        with pytest.raises(NotFittedError, match=rf"^{name} is not fitted yet: call fit\(train\) first$"):
            call()


# ---- validators -----------------------------------------------------------------------------------
K_MODELS = {
    "UserKNN": lambda f, k: UserKNN(k=k),
    "ProfileKNN": lambda f, k: ProfileKNN(f, k=k),
    "HybridUserKNN": lambda f, k: HybridUserKNN(f, k=k),
}


@pytest.mark.parametrize("name", sorted(K_MODELS))
@pytest.mark.parametrize(
    "k, message",
    [
        (10.0, r"k \(neighbours\) must be a positive integer, got 10\.0 \(float\)"),
        (2.5, r"k \(neighbours\) must be a positive integer, got 2\.5 \(float\)"),
        (0, r"k \(neighbours\) must be a positive integer, got 0"),
        (True, r"k \(neighbours\) must be a positive integer, got True \(bool\)"),
    ],
)
def test_neighbour_counts_are_refused_the_same_way_by_every_model(name, k, message, features, train):
    with pytest.raises(InvalidParameter, match=message):
        K_MODELS[name](features, k)
    # a value changed after construction is caught by fit, with the same message
    model = K_MODELS[name](features, 5).set_params(k=k)
    with pytest.raises(InvalidParameter, match=message):
        model.fit(train)


@pytest.mark.parametrize(
    "k, message",
    [
        (10.0, r"k \(neighbours\) must be a positive integer or None, got 10\.0 \(float\)"),
        (0, r"k \(neighbours\) must be a positive integer or None, got 0"),
        (True, r"k \(neighbours\) must be a positive integer or None, got True \(bool\)"),
    ],
)
def test_item_knn_refuses_neighbour_counts_like_the_user_models(k, message, train):
    """ItemKNN's k is a neighbour count too (None: every item); the same refusal, at construction
    and at fit after set_params."""
    with pytest.raises(InvalidParameter, match=message):
        ItemKNN(k=k)
    model = ItemKNN(k=5).set_params(k=k)
    with pytest.raises(InvalidParameter, match=message):
        model.fit(train)


SHARED_PARAMETERS = {  # one parameter name, one rule, across model families
    "n_epochs": (2.5, r"n_epochs must be a positive integer, got 2\.5 \(float\)", ["BiasedMF", "BPR", "VBPR"]),
    "seed": (-1, r"seed must be a non-negative integer, got -1", ["BiasedMF", "BPR", "VBPR"]),
    "positive_threshold": (-1.0, r"positive_threshold must be >= 0, got -1\.0", RANKERS),
}


@pytest.mark.parametrize(
    "parameter, name",
    [(parameter, name) for parameter, (_, _, names) in SHARED_PARAMETERS.items() for name in names],
)
def test_a_shared_parameter_is_refused_the_same_way_by_every_family(parameter, name, features, train):
    value, message = SHARED_PARAMETERS[parameter][:2]
    model = all_estimators(features)[name]
    with pytest.raises(InvalidParameter, match=message):
        clone(model, **{parameter: value})  # at construction
    with pytest.raises(InvalidParameter, match=message):
        clone(model).set_params(**{parameter: value}).fit(train)  # and at fit


def test_integer_types_from_numpy_are_counts(features, train):
    model = UserKNN(k=np.int64(5)).fit(train)
    assert model.predict([1], [1]).shape == (1,)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: LinearFusion(UserKNN(), ContentPredictor(f), w=1.5), r"w \(fusion weight\) must be in \[0, 1\]"),
        (lambda f: LinearFusion(UserKNN(), ContentPredictor(f), w=-0.1), r"w \(fusion weight\) must be in \[0, 1\]"),
        (lambda f: HybridUserKNN(f, alpha=1.5), r"alpha must be in \[0, 1\], got 1\.5"),
        (lambda f: HybridUserKNN(f, n=2.0), r"n \(list length\) must be a positive integer, got 2\.0"),
        (lambda f: ContentPredictor(f, top_m=0), r"top_m must be a positive integer or None, got 0"),
        (lambda f: UserKNN(similarity="jaccard"), r"similarity must be one of \['cosine', 'pearson'\]"),
        (lambda f: UserKNN(mean_centred="yes"), r"mean_centred must be True or False"),
        (lambda f: HybridUserKNN(f, score="sum"), r"score must be one of"),
        (lambda f: ProfileKNN(f, relevance="liked"), r"unknown relevance rule 'liked'"),
        (lambda f: ProfileKNN(np.zeros((3, 2))), r"features must be ItemFeatures"),
        (lambda f: GroupRecommender(emotion_weight=-1.0), r"emotion_weight must be >= 0"),
        (lambda f: GenreClusters(k_range=(5, 2)), r"k_range must run from low to high"),
        (lambda f: PredictorTopN("UserKNN"), r"model must be a rating predictor"),
        (lambda f: ItemKNN(shrink=-1.0), r"shrink must be >= 0, got -1\.0"),
        (lambda f: BPR(negatives="popular"), r"negatives must be one of \['lower_rated', 'unrated'\]"),
        (lambda f: VBPR(f, feature_scaling="minmax"), r"feature_scaling must be one of"),
        (lambda f: VBPR(f, n_components=0), r"n_components must be a positive integer or None, got 0"),
        (lambda f: BPR(learning_rate=0.0), r"learning_rate must be > 0, got 0\.0"),
    ],
)
def test_shared_validators_name_the_parameter_and_the_rule(make, message, features):
    with pytest.raises(InvalidParameter, match=message):
        make(features)


# ---- fallback flags travel with the predictions ----------------------------------------------------
PREDICTORS = {
    "UserKNN": lambda f: UserKNN(k=5),
    "ProfileKNN": lambda f: ProfileKNN(f, k=5),
    "ContentPredictor": lambda f: ContentPredictor(f.subset(np.arange(1, 30))),
    "LinearFusion": lambda f: LinearFusion(UserKNN(k=5), ContentPredictor(f.subset(np.arange(1, 30)))),
    "UserMeanPredictor": lambda f: UserMeanPredictor(),
    "GlobalMeanPredictor": lambda f: GlobalMeanPredictor(),
}


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_predict_returns_values_and_fallback_without_keeping_state(name, train, features):
    model = PREDICTORS[name](features).fit(train)
    users = np.array([1, 2, 999, 3, 1])
    items = np.array([1, 35, 2, 9999, 39])
    state = {key: id(value) for key, value in vars(model).items()}
    result = model.predict(users, items, return_fallback=True)
    assert isinstance(result, Predictions)
    assert result.values.shape == result.fallback.shape == (5,) and result.fallback.dtype == bool
    np.testing.assert_array_equal(result.values, model.predict(users, items))
    assert result.fallback[2]  # an unseen user: the default is all there is
    # an unseen item: a default too, except for the user mean, whose prediction never looks at items
    assert result.fallback[3] == (name != "UserMeanPredictor")
    assert {key: id(value) for key, value in vars(model).items()} == state  # nothing of the call is kept
    assert reports_fallback(model)
    np.testing.assert_array_equal(predict_with_fallback(model, users, items).fallback, result.fallback)


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_two_interleaved_callers_get_their_own_fallback_masks(name, train, features):
    """One fitted model shared by two Streamlit sessions: each call's flags are its own."""
    model = PREDICTORS[name](features).fit(train)
    pairs = {
        "a": (np.array([1, 999, 2, 998]), np.array([1, 1, 9999, 3])),  # mostly fallbacks
        "b": (np.array([1, 2, 3, 4]), np.array([2, 3, 4, 5])),  # known users and items
    }
    expected = {key: model.predict(*value, return_fallback=True) for key, value in pairs.items()}
    assert not np.array_equal(expected["a"].fallback, expected["b"].fallback)  # the test can tell them apart
    barrier = threading.Barrier(2)
    mismatches = []

    def caller(key):
        barrier.wait()
        for _ in range(60):
            got = model.predict(*pairs[key], return_fallback=True)
            if not (
                np.array_equal(got.values, expected[key].values)
                and np.array_equal(got.fallback, expected[key].fallback)
            ):
                mismatches.append(key)

    threads = [threading.Thread(target=caller, args=(key,)) for key in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_predict_with_fallback_tolerates_a_model_that_does_not_report_fallbacks(train):
    class Legacy(RatingPredictor):
        def __init__(self):
            pass

        def fit(self, train):
            self.mean_ = float(train["rating"].mean())
            return self

        def predict(self, user_ids, item_ids):  # the pre-contract signature
            return np.full(len(user_ids), self.mean_)

    model = Legacy().fit(train)
    assert not reports_fallback(model)
    values, fallback = predict_with_fallback(model, [1, 2], [3, 4])
    np.testing.assert_allclose(values, train["rating"].mean())
    assert fallback.tolist() == [False, False]


# ---- one top-N frame ------------------------------------------------------------------------------
def top_n_models(train, features, people):
    users, genres = people
    return {
        "PredictorTopN": lambda: PredictorTopN(ContentPredictor(features)).fit(train),
        "HybridUserKNN": lambda: HybridUserKNN(features, alpha=0.5, k=5).fit(train),
        "GroupRecommender": lambda: GroupRecommender(n_components=3, min_group_size=2).fit(train, users, genres),
        "MostPop": lambda: MostPop().fit(train),
        "ItemKNN": lambda: ItemKNN(k=10).fit(train),
        "BPR": lambda: BPR(k=4, n_epochs=2, batch_size=64, device="cpu").fit(train),
        "VBPR": lambda: VBPR(features, k=4, k2=3, n_epochs=2, batch_size=64, device="cpu").fit(train),
    }


@pytest.mark.parametrize("name", ["PredictorTopN", "HybridUserKNN", "GroupRecommender", *RANKERS])
def test_every_top_n_model_returns_the_same_frame(name, train, features, people):
    model = top_n_models(train, features, people)[name]()
    lists = model.recommend([1, 2, 3], 4)
    assert lists.columns.tolist() == TOPN_COLUMNS
    assert lists.dtypes.astype(str).tolist() == ["int64", "int64", "int64", "float64", "bool"]
    assert set(lists["user_id"]) == {1, 2, 3}
    for user, rows in lists.groupby("user_id"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1)) and 0 < len(rows) <= 4
        assert rows["item_id"].is_unique
        assert not set(rows["item_id"]) & set(train.loc[train.user_id == user, "item_id"])  # seen excluded
        if name != "GroupRecommender":  # group lists follow clusters first, then scores
            assert rows["score"].is_monotonic_decreasing
    # candidates restrict, exclude_seen=False readmits what the user rated, n=None is the model's default
    allowed = list(range(1, 21))
    assert set(model.recommend([1, 2], 4, candidates=allowed)["item_id"]) <= set(allowed)
    with_seen = model.recommend([1], 40, exclude_seen=False)
    assert set(with_seen["item_id"]) & set(train.loc[train.user_id == 1, "item_id"])
    assert model.recommend([1]).groupby("user_id").size().max() == getattr(model, "n", 10)
    empty = model.recommend([], 4)
    assert empty.empty and empty.columns.tolist() == TOPN_COLUMNS
    with pytest.raises(InvalidParameter, match=r"n \(list length\) must be a positive integer"):
        model.recommend([1], 2.5)


def test_ties_go_to_the_lower_item_id(train):
    """A constant predictor ties every item: the list is the unseen items in id order."""
    lists = PredictorTopN(GlobalMeanPredictor()).fit(train).recommend([1], 5)
    unseen = sorted(set(train.item_id) - set(train.loc[train.user_id == 1, "item_id"]))
    assert lists["item_id"].tolist() == unseen[:5]


@pytest.mark.parametrize("name", RANKERS)
def test_rankers_list_every_user_by_default_flag_unknown_users_and_keep_no_call_state(name, train, features, people):
    model = top_n_models(train, features, people)[name]()
    everyone = model.recommend()
    assert set(everyone["user_id"]) == set(train["user_id"])  # user_ids=None: every training user
    assert everyone.groupby("user_id").size().max() == 10  # n=None: the default list length
    state = {key: id(value) for key, value in vars(model).items()}
    lists = model.recommend([1, 999], 3)
    assert vars(model).keys() == state.keys() and {key: id(v) for key, v in vars(model).items()} == state
    flags = lists.groupby("user_id")["fallback"].agg(["all", "any"])
    assert flags.loc[999, "all"] and not flags.loc[1, "any"]  # a user never seen: the fallback ranking
    scores = model.score([1, 999])
    assert np.isfinite(scores).all() and scores.shape == (2, len(model.item_ids_))
