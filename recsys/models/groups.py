"""Demographic / emotion group recommender after Balfaqih (2023), "A Hybrid Movies Recommendation
System Based on Demographics and Facial Expression Analysis using Machine Learning".

Pipeline (the paper's Fig. 3 and Fig. 4):

1. Movies are clustered by k-means (scikit-learn) on their multi-hot genre vectors. The elbow curve
   is the within-cluster sum of squares (WCSS, `KMeans.inertia_`) for k = 2..20; the chosen k is the
   knee: the k whose (k, WCSS) point lies farthest from the straight chord joining the first and
   last points of the curve, both axes scaled to [0, 1] (the "kneedle" rule without smoothing).
2. People are grouped by age band (the paper's 8-14, 15-24, 25-37, 38-47, plus the remaining ages
   as their own bands: <8, 48-55, 56+) and gender. MovieLens has no emotion labels, so rating data
   can only be grouped by age band and gender; a face's emotion enters through
   `EMOTION_GENRE_PREFERENCES`, an editable emotion -> genre weight table (our assumption, not data).
3. A group's favoured cluster is the cluster most represented among the movies its members rated
   highly (rating >= `like_threshold`, 4 by default). With an emotion, each liked movie's vote is
   weighted by 1 + the mean preference weight of its genres for that emotion (floored at 0.1).
4. Ratings inside the group are predicted by a truncated SVD of the group's user x movie matrix:
   each member's ratings are centred on that member's mean, missing cells are 0 (= the member's
   mean), the rank-r reconstruction (numpy SVD, r = `n_components`) is added back to the member
   means, and a movie's group score is the mean reconstructed rating over all members. Movies of
   the favoured cluster are ranked by that score (plus, with an emotion, `emotion_weight` stars per
   unit of genre preference); if the cluster runs out, the next most represented cluster follows.

A group with fewer than `min_group_size` members (e.g. female raters under 8 in ML-100K) is widened
to its age band, then to everybody; `recommend_group` reports which group was actually used.

Two ways to ask: `recommend_group(age_band, gender, emotion)` for a face (no rating history
needed), and `recommend(user_ids, n)`, the project's one top-N interface (`TopNRecommender`): each
known user gets their group's list minus what they rated. `ordering` chooses the list: the paper's
favoured cluster first ("favoured_cluster"), the same SVD scores over all clusters
("all_clusters", an ablation) or the group's most rated movies ("popular", the paper's benchmark).
The evaluation lives in `recsys.eval.groups`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.models.base import (
    BaseEstimator,
    TopNRecommender,
    check_choice,
    check_count,
    check_is_fitted,
    check_positive,
    check_ratings_frame,
    empty_topn,
    topn_frame,
)

# (low, high inclusive, label). The paper's four bands plus the remaining ages as their own bands.
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 7, "<8"),
    (8, 14, "8-14"),
    (15, 24, "15-24"),
    (25, 37, "25-37"),
    (38, 47, "38-47"),
    (48, 55, "48-55"),
    (56, 200, "56+"),
)
AGE_BAND_LABELS = tuple(label for _, _, label in AGE_BANDS)
PAPER_AGE_BANDS = ("8-14", "15-24", "25-37", "38-47")
GENDERS = ("F", "M")

# Editable: how much a viewer showing an emotion is assumed to lean towards (>0) or away from (<0)
# each ML-100K genre. MovieLens carries no emotion labels, so these weights are a documented
# assumption (mood-congruent for happy/neutral, mood-repair for sad/fear/angry), not learnt.
EMOTION_GENRE_PREFERENCES: dict[str, dict[str, float]] = {
    "happy": {
        "Comedy": 1.0,
        "Musical": 0.8,
        "Animation": 0.6,
        "Children's": 0.5,
        "Romance": 0.5,
        "Adventure": 0.4,
        "Horror": -0.5,
        "War": -0.3,
    },
    "sad": {
        "Comedy": 0.8,
        "Children's": 0.5,
        "Animation": 0.5,
        "Musical": 0.5,
        "Romance": 0.3,
        "Drama": -0.3,
        "War": -0.6,
        "Horror": -0.6,
    },
    "angry": {"Action": 0.8, "Thriller": 0.5, "Crime": 0.4, "Comedy": 0.3, "Romance": -0.4},
    "fear": {"Comedy": 0.6, "Animation": 0.4, "Children's": 0.4, "Horror": -0.8, "Thriller": -0.5},
    "disgust": {"Comedy": 0.5, "Documentary": 0.4, "Drama": 0.3, "Horror": -0.6},
    "surprise": {"Sci-Fi": 0.7, "Mystery": 0.6, "Fantasy": 0.5, "Adventure": 0.5, "Thriller": 0.4},
    "neutral": {"Drama": 0.3, "Thriller": 0.2, "Documentary": 0.2},
}


def age_band(age) -> str:
    """Label of the band holding `age` (years); InvalidInput for a missing or implausible age."""
    if age is None or pd.isna(age):
        raise InvalidInput("age is missing")
    age = float(age)
    if not 0 <= age <= 200:
        raise InvalidInput(f"age {age} is implausible")
    for _low, high, label in AGE_BANDS:
        if age < high + 1:
            return label
    raise AssertionError(f"age {age} is outside every band")  # pragma: no cover - bands cover 0..200


def _check_emotion(emotion: str | None, table: dict) -> str | None:
    if emotion is None:
        return None
    if emotion not in table:
        raise InvalidParameter(f"unknown emotion {emotion!r}; the preference table knows {sorted(table)}")
    return emotion


# ---- genre clusters ----------------------------------------------------------------------------
def elbow_curve(genres: pd.DataFrame, k_range=range(2, 21), random_state: int = 0, n_init: int = 4) -> pd.DataFrame:
    """WCSS (k-means inertia) per k on the item x genre matrix: columns k, wcss."""
    from sklearn.cluster import KMeans

    X = _genre_matrix(genres)
    # more clusters than distinct genre vectors would only split identical movies
    distinct = len(np.unique(X, axis=0))
    ks = [k for k in k_range if 1 <= k <= distinct]
    if not ks:
        raise InvalidInput(f"no k in {list(k_range)} fits {len(X)} movies")
    with _single_threaded():
        wcss = [KMeans(k, n_init=n_init, random_state=random_state).fit(X).inertia_ for k in ks]
    return pd.DataFrame({"k": ks, "wcss": np.asarray(wcss, dtype=float)})


def knee_of(curve: pd.DataFrame) -> int:
    """The k farthest from the chord between the curve's end points (both axes scaled to [0, 1])."""
    if len(curve) < 3:
        return int(curve["k"].iloc[0])
    k = curve["k"].to_numpy(dtype=float)
    w = curve["wcss"].to_numpy(dtype=float)
    x = (k - k[0]) / (k[-1] - k[0])
    span = w[0] - w[-1]
    y = (w - w[-1]) / span if span > 0 else np.zeros_like(w)
    # chord from (0, 1) to (1, 0): distance ∝ |x + y - 1|; below the chord means a bent curve
    distance = (1.0 - x - y) / np.sqrt(2.0)
    return int(k[int(np.argmax(distance))])


_THREADPOOLS = None


def _single_threaded():
    """These problems are tiny (1,682 x 19); OpenMP/BLAS thread pools only add overhead and, on a
    busy machine, oversubscription made k-means 15x slower. One thread keeps timings predictable.
    The thread pools are found once (a fresh ``threadpool_limits`` rescans the libraries: ~10 ms)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1)


def _check_k_range(k_range) -> None:
    if not (isinstance(k_range, (tuple, list)) and len(k_range) == 2):
        raise InvalidParameter(f"k_range must be a (lowest, highest) pair of cluster counts, got {k_range!r}")
    low = check_count(k_range[0], "k_range[0]")
    high = check_count(k_range[1], "k_range[1]")
    if high < low:
        raise InvalidParameter(f"k_range must run from low to high, got {tuple(k_range)}")


def _genre_matrix(genres: pd.DataFrame) -> np.ndarray:
    if genres is None or genres.empty:
        raise InvalidInput("the dataset has no genre table to cluster")
    return genres.to_numpy(dtype=np.float64)


class GenreClusters(BaseEstimator):
    """k-means over genre vectors. `n_clusters=None` picks k by the knee of the elbow curve.

    Learned: ``elbow_`` (k, wcss), ``k_``, ``labels_`` (cluster per item id), ``centers_``.
    """

    def __init__(
        self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 20), random_state: int = 0, n_init: int = 4
    ):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.random_state = random_state
        self.n_init = n_init
        self._validate_params()

    def _validate_params(self) -> None:
        check_count(self.n_clusters, "n_clusters", allow_none=True)
        _check_k_range(self.k_range)
        check_count(self.n_init, "n_init")

    def fit(self, genres: pd.DataFrame) -> GenreClusters:
        from sklearn.cluster import KMeans

        self._validate_params()
        X = _genre_matrix(genres)
        self.elbow_ = elbow_curve(genres, range(self.k_range[0], self.k_range[1] + 1), self.random_state, self.n_init)
        self.k_ = int(self.n_clusters) if self.n_clusters else knee_of(self.elbow_)
        with _single_threaded():
            km = KMeans(self.k_, n_init=self.n_init, random_state=self.random_state).fit(X)
        self.labels_ = pd.Series(km.labels_.astype(np.int64), index=genres.index, name="cluster")
        self.centers_ = pd.DataFrame(km.cluster_centers_, columns=genres.columns)
        self.centers_.index.name = "cluster"
        return self

    def composition(self, genres: pd.DataFrame) -> pd.DataFrame:
        """Tidy frame: cluster, genre, share (of the cluster's movies carrying it), n_movies."""
        check_is_fitted(self)
        rows = []
        for cluster, members in self.labels_.groupby(self.labels_):
            share = genres.loc[members.index].mean()
            for genre, value in share.items():
                rows.append({"cluster": int(cluster), "genre": genre, "share": float(value), "n_movies": len(members)})
        return pd.DataFrame(rows)


# ---- groups ------------------------------------------------------------------------------------
def user_groups(users: pd.DataFrame) -> pd.DataFrame:
    """users -> columns age_band, gender (index user_id); users without age/gender are dropped."""
    if users is None or not {"age", "gender"} <= set(users.columns):
        raise InvalidInput("the dataset has no user ages and genders to form groups from")
    if "age_group" in users.columns:
        # ML-1M's "age" is only the lower bound of a coded group: "Under 18" is stored as 1, which
        # age_band() would file under "<8", and 35-44 / 45-49 straddle the paper's bands.
        raise InvalidInput(
            "this dataset records age groups, not ages (e.g. ML-1M: "
            + ", ".join(sorted(users["age_group"].dropna().unique().tolist())[:7])
            + "); they do not map onto the "
            "paper's age bands (8-14, 15-24, 25-37, 38-47), so group results would be wrong. "
            "Use ml-100k, which has exact ages."
        )
    known = users[users["age"].notna() & users["gender"].isin(GENDERS)]
    return pd.DataFrame(
        {"age_band": [age_band(a) for a in known["age"]], "gender": known["gender"].to_numpy()}, index=known.index
    )


@dataclass
class GroupRecommendation:
    items: pd.DataFrame  # rank, item_id, score, predicted, cluster
    age_band: str | None  # group actually used (after widening)
    gender: str | None
    emotion: str | None
    favoured_cluster: int
    cluster_votes: pd.Series  # weighted liked-movie count per cluster
    n_members: int
    widened: bool


@dataclass
class GroupRanking:
    """Every candidate movie of a group in the recommender's order, with the facts behind it."""

    items: pd.DataFrame  # item_id, predicted, cluster, score, cluster_rank (best first)
    age_band: str | None  # group actually used (after widening)
    gender: str | None
    members: pd.Index
    widened: bool
    votes: pd.Series
    emotion: str | None


ORDERINGS = ("favoured_cluster", "all_clusters", "popular")


class GroupRecommender(BaseEstimator, TopNRecommender):
    """Fit on ratings + users + genres; `recommend_group(age_band, gender, emotion)` for a face,
    `recommend(user_ids, n)` for known users (see the module docstring).

    `ordering` is only read when lists are made, so ``set_params(ordering=...)`` on a fitted
    recommender switches it without refitting (and keeps the per-group SVDs already computed).
    With ``ordering="popular"`` ``score`` is the group's number of ratings of the movie and
    ``predicted`` the group's mean rating of it.
    """

    def __init__(
        self,
        n_components: int = 10,
        like_threshold: float = 4.0,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 20),
        min_group_size: int = 5,
        emotion_weight: float = 0.25,
        emotion_table: dict[str, dict[str, float]] | None = None,
        random_state: int = 0,
        ordering: str = "favoured_cluster",
    ):
        self.n_components = n_components
        self.like_threshold = like_threshold
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.min_group_size = min_group_size
        self.emotion_weight = emotion_weight
        self.emotion_table = emotion_table
        self.random_state = random_state
        self.ordering = ordering
        self._validate_params()

    def _validate_params(self) -> None:
        check_count(self.n_components, "n_components")
        check_positive(self.like_threshold, "like_threshold")
        check_count(self.n_clusters, "n_clusters", allow_none=True)
        _check_k_range(self.k_range)
        check_count(self.min_group_size, "min_group_size")
        check_positive(self.emotion_weight, "emotion_weight", allow_zero=True)
        check_choice(self.ordering, "ordering", ORDERINGS)
        if self.emotion_table is not None and not isinstance(self.emotion_table, dict):
            raise InvalidParameter(
                f"emotion_table must be a dict emotion -> {{genre: weight}}, got {self.emotion_table!r}"
            )

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self, ratings: pd.DataFrame, users: pd.DataFrame, genres: pd.DataFrame, clusters: GenreClusters | None = None
    ) -> GroupRecommender:
        """`clusters`: already fitted genre clusters to reuse (they depend on genres only)."""
        self._validate_params()
        check_ratings_frame(ratings)
        self.genres_ = genres
        self.clusters_ = (
            clusters
            if clusters is not None
            else GenreClusters(self.n_clusters, self.k_range, self.random_state).fit(genres)
        )
        self.groups_ = user_groups(users)
        self.ratings_ = ratings[ratings["user_id"].isin(self.groups_.index) & ratings["item_id"].isin(genres.index)][
            ["user_id", "item_id", "rating"]
        ]
        self.table_ = self.emotion_table if self.emotion_table is not None else EMOTION_GENRE_PREFERENCES
        self._scores_cache: dict = {}  # group members -> SVD scores: a pure memo, safe to share
        return self

    def members(self, age_band: str | None, gender: str | None) -> pd.Index:
        check_is_fitted(self)
        g = self.groups_
        mask = np.ones(len(g), dtype=bool)
        if age_band is not None:
            mask &= (g["age_band"] == age_band).to_numpy()
        if gender is not None:
            mask &= (g["gender"] == gender).to_numpy()
        return g.index[mask]

    def _resolve_group(self, age_band: str | None, gender: str | None):
        if age_band is not None and age_band not in AGE_BAND_LABELS:
            raise InvalidParameter(f"unknown age band {age_band!r}; expected one of {AGE_BAND_LABELS}")
        if gender is not None and gender not in GENDERS:
            raise InvalidParameter(f"unknown gender {gender!r}; expected 'F' or 'M'")
        for band, sex in ((age_band, gender), (age_band, None), (None, None)):
            members = self.members(band, sex)
            rated = self.ratings_["user_id"].isin(members).sum()
            if len(members) >= self.min_group_size and rated > 0:
                return band, sex, members, (band, sex) != (age_band, gender)
        raise InvalidInput("not enough rated users to form any group")

    def emotion_affinity(self, emotion: str | None, table: dict | None = None) -> pd.Series:
        """Per movie: mean preference weight of its genres for `emotion` (0 without an emotion)."""
        check_is_fitted(self)
        if emotion is None:
            return pd.Series(0.0, index=self.genres_.index)
        weights = pd.Series((table or self.table_)[emotion], dtype=float).reindex(self.genres_.columns).fillna(0.0)
        counts = self.genres_.sum(axis=1).replace(0, 1)
        return pd.Series(self.genres_.to_numpy(dtype=float) @ weights.to_numpy(), index=self.genres_.index) / counts

    def _group_ratings(self, members: pd.Index) -> pd.DataFrame:
        return self.ratings_[self.ratings_["user_id"].isin(members)]

    def _group_scores(self, members: pd.Index) -> tuple[pd.Series, pd.DataFrame]:
        """Mean rank-r SVD reconstruction per movie over the group, and the group's ratings."""
        key = tuple(members)
        cached = self._scores_cache.get(key)
        if cached is not None:
            return cached
        ratings = self._group_ratings(members)
        users = pd.Index(np.sort(ratings["user_id"].unique()))
        items = pd.Index(np.sort(ratings["item_id"].unique()))
        rows = users.get_indexer(ratings["user_id"])
        cols = items.get_indexer(ratings["item_id"])
        values = ratings["rating"].to_numpy(dtype=np.float64)
        counts = np.bincount(rows, minlength=len(users))
        means = np.bincount(rows, weights=values, minlength=len(users)) / np.maximum(counts, 1)
        centred = np.zeros((len(users), len(items)))
        centred[rows, cols] = values - means[rows]
        rank = max(1, min(self.n_components, min(centred.shape) - 1)) if min(centred.shape) > 1 else 1
        with _single_threaded():  # small matrices: BLAS threads only oversubscribe a busy machine
            U, s, Vt = np.linalg.svd(centred, full_matrices=False)
        recon = (U[:, :rank] * s[:rank]) @ Vt[:rank] + means[:, None]
        scores = pd.Series(recon.mean(axis=0), index=items, name="predicted")
        self._scores_cache[key] = (scores, ratings)
        return scores, ratings

    def cluster_votes(self, ratings: pd.DataFrame, emotion: str | None = None, table: dict | None = None) -> pd.Series:
        check_is_fitted(self)
        liked = ratings.loc[ratings["rating"] >= self.like_threshold, "item_id"]
        clusters = self.clusters_.labels_.reindex(liked.to_numpy())
        weights = np.ones(len(liked))
        if emotion is not None:
            weights = np.maximum(1.0 + self.emotion_affinity(emotion, table).reindex(liked.to_numpy()).to_numpy(), 0.1)
        votes = pd.Series(weights, index=clusters.to_numpy()).groupby(level=0).sum()
        return votes.reindex(range(self.clusters_.k_), fill_value=0.0).rename("votes")

    def group_ranking(
        self, age_band: str | None, gender: str | None, emotion: str | None = None, emotion_table: dict | None = None
    ) -> GroupRanking:
        """Full ordering of the group's candidate movies by `ordering`, with the group facts.

        `emotion_table` overrides the fitted emotion -> genre table for this call (the page's editor).
        """
        check_is_fitted(self)
        table = emotion_table or self.table_
        emotion = _check_emotion(emotion, table)
        band, sex, members, widened = self._resolve_group(age_band, gender)
        if self.ordering == "popular":  # no SVD needed: the group's rating counts alone
            ratings = self._group_ratings(members)
            scores = pd.Series(np.nan, index=pd.Index(np.sort(ratings["item_id"].unique())), name="predicted")
        else:
            scores, ratings = self._group_scores(members)
        votes = self.cluster_votes(ratings, emotion, table)
        cluster_order = votes.sort_values(ascending=False, kind="stable").index
        cluster_rank = pd.Series(np.arange(len(cluster_order)), index=cluster_order)
        frame = pd.DataFrame({"item_id": scores.index, "predicted": scores.to_numpy()})
        frame["cluster"] = self.clusters_.labels_.reindex(frame["item_id"]).to_numpy()
        frame["score"] = frame["predicted"]
        if emotion is not None:
            frame["score"] += (
                self.emotion_weight * self.emotion_affinity(emotion, table).reindex(frame["item_id"]).to_numpy()
            )
        frame["cluster_rank"] = cluster_rank.reindex(frame["cluster"]).to_numpy()
        if self.ordering == "favoured_cluster":
            keys, ascending = ["cluster_rank", "score", "item_id"], [True, False, True]
        elif self.ordering == "all_clusters":
            keys, ascending = ["score", "item_id"], [False, True]
        else:  # "popular": the group's most rated movies (ties: mean rating, then id)
            stats = ratings.groupby("item_id")["rating"].agg(["size", "mean"])
            frame["score"] = stats["size"].reindex(frame["item_id"]).to_numpy(dtype=np.float64)
            frame["predicted"] = frame["_mean"] = stats["mean"].reindex(frame["item_id"]).to_numpy()
            keys, ascending = ["score", "_mean", "item_id"], [False, False, True]
        frame = frame.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
        return GroupRanking(frame, band, sex, members, widened, votes, emotion)

    def recommend_group(
        self,
        age_band: str | None,
        gender: str | None,
        emotion: str | None = None,
        n: int = 10,
        exclude=(),
        emotion_table: dict | None = None,
    ) -> GroupRecommendation:
        """Top-n for a group (works for a new face: no rating history needed)."""
        n = check_count(n, "n (list length)")
        ranking = self.group_ranking(age_band, gender, emotion, emotion_table)
        frame = ranking.items
        if len(exclude):
            frame = frame[~frame["item_id"].isin(list(exclude))]
        top = frame.head(n).reset_index(drop=True)
        top["rank"] = np.arange(1, len(top) + 1)
        return GroupRecommendation(
            items=top[["rank", "item_id", "score", "predicted", "cluster"]],
            age_band=ranking.age_band,
            gender=ranking.gender,
            emotion=ranking.emotion,
            favoured_cluster=int(ranking.votes.idxmax()),
            cluster_votes=ranking.votes,
            n_members=len(ranking.members),
            widened=ranking.widened,
        )

    def recommend(
        self, user_ids=None, n: int | None = None, *, exclude_seen: bool = True, candidates=None
    ) -> pd.DataFrame:
        """Each user's group list (age band x gender, no emotion) as the top-N frame.

        Users the recommender cannot place in a group (unknown id, no age or gender) get everybody's
        list, and ``fallback`` is True for them and for users whose group was widened (too small).
        ``user_ids=None``: every grouped user.
        """
        check_is_fitted(self)
        n = self._list_length(n)
        users = self.groups_.index.to_numpy() if user_ids is None else np.atleast_1d(np.asarray(user_ids, np.int64))
        if len(users) == 0:
            return empty_topn()
        allowed = None if candidates is None else np.asarray(list(candidates), dtype=np.int64)
        seen = self.ratings_.groupby("user_id")["item_id"].agg(lambda items: items.to_numpy()) if exclude_seen else {}
        placed = self.groups_.reindex(users)
        keys = list(zip(placed["age_band"].where(placed["age_band"].notna(), None), placed["gender"]))
        rankings: dict = {}
        columns: dict[str, list] = {name: [] for name in ("user_id", "rank", "item_id", "score", "fallback")}
        for user, (band, sex) in zip(users.tolist(), keys):
            known = band is not None and isinstance(sex, str)
            key = (band, sex) if known else (None, None)
            if key not in rankings:
                ranking = self.group_ranking(*key)
                items = ranking.items
                if allowed is not None:
                    items = items[items["item_id"].isin(allowed)]
                rankings[key] = (items["item_id"].to_numpy(), items["score"].to_numpy(), ranking.widened or not known)
            item_ids, scores, fallback = rankings[key]
            keep = np.ones(len(item_ids), dtype=bool)
            if exclude_seen and user in seen:
                keep = ~np.isin(item_ids, seen[user])
            chosen = np.flatnonzero(keep)[:n]
            columns["user_id"].append(np.full(len(chosen), user, dtype=np.int64))
            columns["rank"].append(np.arange(1, len(chosen) + 1))
            columns["item_id"].append(item_ids[chosen])
            columns["score"].append(scores[chosen])
            columns["fallback"].append(np.full(len(chosen), fallback, dtype=bool))
        return topn_frame(*(np.concatenate(columns[name]) for name in columns))
