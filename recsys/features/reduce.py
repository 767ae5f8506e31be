"""Dimensionality reduction of item features, fitted on training items only.

Fitting on all items would leak test items' content into the representation a model is
evaluated with, so every reducer takes the training item ids explicitly::

    reducer = PCAReducer(64).fit(features, train_item_ids)
    reduced = reducer.transform(features)        # all items, 64 dims

PCA comes from scikit-learn; "TOP-K" (keep the k highest-variance dimensions) and "AE" (a small
autoencoder, in torch) follow the Ben Hassen paper's reductions.
"""

from __future__ import annotations

import numpy as np

from recsys.errors import InvalidInput, InvalidParameter, NotFittedError
from recsys.features.item_features import ItemFeatures


class _Reducer:
    """fit(features, train_item_ids) -> self; transform(features) -> ItemFeatures (scikit-learn habit)."""

    label = "reduced"

    def _training_matrix(self, features: ItemFeatures, train_item_ids) -> np.ndarray:
        # NaN would become NaN variances (an arbitrary TOP-K choice) or NaN autoencoder weights.
        features.check_finite(type(self).__name__)
        if train_item_ids is None:
            matrix = features.matrix
        else:
            matrix = features.subset(np.asarray(train_item_ids, dtype=np.int64)).matrix
        if len(matrix) < 2:
            raise InvalidInput(
                f"{type(self).__name__}: need at least 2 training items with features, got {len(matrix)} "
                f"(of {len(features)} items in '{features.name}')"
            )
        return matrix

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(features, train_item_ids) first")

    def _check_dim(self, features: ItemFeatures) -> None:
        self._check_fitted()
        if features.dim != self.n_features_in_:
            raise InvalidInput(f"{type(self).__name__} was fitted on {self.n_features_in_} dims, got {features.dim}")

    def _wrap(self, features: ItemFeatures, matrix: np.ndarray) -> ItemFeatures:
        meta = dict(features.meta, reduction=self.describe())
        return ItemFeatures(features.item_ids, matrix, f"{features.name} · {self.label}{matrix.shape[1]}", meta)

    def fit_transform(self, features: ItemFeatures, train_item_ids=None) -> ItemFeatures:
        return self.fit(features, train_item_ids).transform(features)

    def describe(self) -> dict:
        return {"method": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.endswith("_")}}


def _check_components(n_components: int, n_train: int, dim: int, who: str) -> None:
    if n_components < 1 or n_components > min(n_train, dim):
        raise InvalidParameter(
            f"{who}: n_components={n_components} must be between 1 and min(training items={n_train}, dims={dim})"
        )


class PCAReducer(_Reducer):
    label = "PCA"

    def __init__(self, n_components: int = 64, whiten: bool = False, random_state: int = 0):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, features: ItemFeatures, train_item_ids=None) -> PCAReducer:
        from sklearn.decomposition import PCA

        matrix = self._training_matrix(features, train_item_ids)
        _check_components(self.n_components, len(matrix), matrix.shape[1], "PCAReducer")
        self.pca_ = PCA(n_components=self.n_components, whiten=self.whiten, random_state=self.random_state).fit(matrix)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        self.n_features_in_ = matrix.shape[1]
        return self

    def transform(self, features: ItemFeatures) -> ItemFeatures:
        self._check_dim(features)
        return self._wrap(features, self.pca_.transform(features.matrix).astype(np.float32))


class TopKVarianceReducer(_Reducer):
    """Keep the k dimensions with the largest variance over the training items (the paper's TOP-K)."""

    label = "TOP"

    def __init__(self, k: int = 64):
        self.k = k

    def fit(self, features: ItemFeatures, train_item_ids=None) -> TopKVarianceReducer:
        matrix = self._training_matrix(features, train_item_ids)
        if not 1 <= self.k <= matrix.shape[1]:
            raise InvalidParameter(f"TopKVarianceReducer: k={self.k} must be between 1 and {matrix.shape[1]}")
        self.variances_ = matrix.var(axis=0)
        # Stable sort: ties keep their original order, so the selection is deterministic.
        self.selected_ = np.sort(np.argsort(-self.variances_, kind="stable")[: self.k])
        self.n_features_in_ = matrix.shape[1]
        return self

    def transform(self, features: ItemFeatures) -> ItemFeatures:
        self._check_dim(features)
        return self._wrap(features, features.matrix[:, self.selected_])


class AutoencoderReducer(_Reducer):
    """A small fully connected autoencoder; the bottleneck is the reduced representation (the paper's AE).

    Inputs are standardised with the training items' mean and standard deviation.
    """

    label = "AE"

    def __init__(
        self,
        n_components: int = 64,
        hidden: int = 256,
        epochs: int = 100,
        lr: float = 1e-3,
        batch_size: int = 128,
        weight_decay: float = 1e-5,
        seed: int = 0,
    ):
        self.n_components = n_components
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, features: ItemFeatures, train_item_ids=None) -> AutoencoderReducer:
        import torch

        matrix = self._training_matrix(features, train_item_ids)
        _check_components(self.n_components, matrix.shape[1], matrix.shape[1], "AutoencoderReducer")
        # Tiny matrix products do not gain from several threads; on a busy 2-core machine the
        # threads' spin-waiting made a 1 s fit take 20 s.
        threads = torch.get_num_threads()
        if matrix.size < 1_000_000:
            torch.set_num_threads(1)
        try:
            return self._fit(matrix)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, matrix: np.ndarray) -> AutoencoderReducer:
        import torch
        from torch import nn

        self.mean_ = matrix.mean(axis=0)
        self.scale_ = matrix.std(axis=0) + 1e-6
        x = torch.from_numpy(((matrix - self.mean_) / self.scale_).astype(np.float32))
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        dim = matrix.shape[1]
        self.encoder_ = nn.Sequential(nn.Linear(dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.n_components))
        self.decoder_ = nn.Sequential(nn.Linear(self.n_components, self.hidden), nn.ReLU(), nn.Linear(self.hidden, dim))
        params = list(self.encoder_.parameters()) + list(self.decoder_.parameters())
        optimiser = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        self.loss_curve_ = []
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), self.batch_size):
                batch = x[order[start : start + self.batch_size]]
                loss = nn.functional.mse_loss(self.decoder_(self.encoder_(batch)), batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            self.loss_curve_.append(total / len(x))
        self.encoder_.eval()
        self.decoder_.eval()
        self.n_features_in_ = dim
        return self

    def transform(self, features: ItemFeatures) -> ItemFeatures:
        import torch

        self._check_dim(features)
        x = torch.from_numpy(((features.matrix - self.mean_) / self.scale_).astype(np.float32))
        with torch.no_grad():
            return self._wrap(features, self.encoder_(x).numpy())

    def reconstruction_error(self, features: ItemFeatures) -> float:
        """Mean squared error in standardised units (compare training vs held-out items)."""
        import torch

        self._check_dim(features)
        x = torch.from_numpy(((features.matrix - self.mean_) / self.scale_).astype(np.float32))
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(self.decoder_(self.encoder_(x)), x))


REDUCERS = {"pca": PCAReducer, "topk": TopKVarianceReducer, "autoencoder": AutoencoderReducer}


def make_reducer(method: str, n_components: int, **params) -> _Reducer:
    """Reducer by name ("pca", "topk", "autoencoder") with n_components (k for top-k)."""
    if method not in REDUCERS:
        raise InvalidParameter(f"unknown reduction '{method}'; choose from {sorted(REDUCERS)}")
    if method == "topk":
        return TopKVarianceReducer(k=n_components, **params)
    return REDUCERS[method](n_components=n_components, **params)
