"""BPR-MF and VBPR (He & McAuley, AAAI 2016) trained with minibatch Adam in torch.

Score of user u for item i::

    x_ui = β_i + γ_u · γ_i + θ_u · (E^T f_i) + β'^T f_i

β_i item bias, γ_u / γ_i latent factors (k), θ_u visual preferences (k2), E (d x k2) the learned
projection of the item representation f_i (d dims: poster or trailer CNN features, genres, ...),
β' the visual bias. BPR-MF is the same model without the two visual terms.

Training maximises Σ log σ(x_ui - x_uj) over (user, positive item i, sampled negative j) triples
with Cornac's L2 terms (λ_w on γ_u, γ_i, γ_j, θ_u; λ_b on β_i and λ_b/10 on β_j; λ_e on E, β'),
each minibatch's loss summed over its triples, Adam over all parameters. Negatives:
``"lower_rated"`` (Cornac's VBPR sampler: any item the user did not rate or rated lower than i, so
a 5-star item also beats the user's own 2-star one) or ``"unrated"`` (classic BPR: items the user
never rated). Sampling, shuffling and initialisation come from seeded torch generators: the same
seed gives the same scores on the CPU (CUDA's scatter-add backward is not bit-reproducible).

Cold start: with ``score_new_items`` every item that has features but no training rating joins
``item_ids_`` with β_i = 0 and γ_i = 0, so it is scored from its features alone. Items without a
feature vector get the zero vector (after scaling), i.e. no visual term.

Runs on ``recsys.config.torch_device()`` (CUDA when there is one) unless ``device`` says otherwise.
Deliberately not Cornac's implementation (a per-triple Python sampler, batch size 100): triples
are sampled vectorised on the device and batches are larger, which is what makes it fast.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput
from recsys.features.item_features import ItemFeatures
from recsys.models.base import check_choice, check_count, check_positive
from recsys.models.implicit import ImplicitRanker, Interactions

NEGATIVE_SAMPLERS = ("lower_rated", "unrated")
FEATURE_SCALINGS = ("none", "standard", "l2")
_MAX_RESAMPLES = 32
#: CPU fits with fewer positives than this run on one torch thread: the steps are many small
#: tensor ops and a second thread costs more than it saves (measured on a busy 2-core machine:
#: a demo fit took 98 s on 2 threads and 2.4 s on one).
SMALL_PROBLEM = 1_000_000


class _torch_threads:
    """Set torch's intra-op threads for the block (None: leave as is), then restore them."""

    def __init__(self, n_threads: int | None):
        self.n_threads = n_threads

    def __enter__(self):
        import torch

        self.previous = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(int(self.n_threads))
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.previous)
        return False


def _xavier(generator, shape):
    import torch

    limit = float(np.sqrt(6.0 / (shape[0] + shape[1])))
    return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * limit


class VBPR(ImplicitRanker):
    """Visual BPR over any item representation (see the module docstring).

    features: ItemFeatures (posters, trailers, genres, ...); None gives BPR-MF (k2 unused).
    k, k2: latent and visual factor sizes. n_components: PCA of the features fitted on the
    training items when they have more dimensions (None: raw). feature_scaling (after PCA):
    "l2" (unit rows), "standard" (z-scores over training items) or "none" (raw, as Cornac).
    n_threads: torch threads while training (None: one on the CPU below 1M positives).

    Defaults (k = k2 = 32, 15 epochs, batches of 1024, Adam lr 0.005, λ_w = λ_b = 0.01,
    λ_e = 10, PCA to 128 dims, unit rows) were tuned on ML-100K with Cornac's ratio protocol
    (bench/ranking_vs_cornac.py); Cornac's own defaults are k = k2 = 10, 50 epochs, batches of
    100, λ_e = 0, raw features.
    """

    def __init__(
        self,
        features: ItemFeatures | None = None,
        k: int = 32,
        k2: int = 32,
        n_epochs: int = 15,
        batch_size: int = 1024,
        learning_rate: float = 0.005,
        lambda_w: float = 0.01,
        lambda_b: float = 0.01,
        lambda_e: float = 10.0,
        negatives: str = "lower_rated",
        positive_threshold: float | None = None,
        n_components: int | None = 128,
        feature_scaling: str = "l2",
        score_new_items: bool = True,
        device: str | None = None,
        n_threads: int | None = None,
        seed: int = 0,
    ):
        self.features = features
        self.k = k
        self.k2 = k2
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lambda_w = lambda_w
        self.lambda_b = lambda_b
        self.lambda_e = lambda_e
        self.negatives = negatives
        self.positive_threshold = positive_threshold
        self.n_components = n_components
        self.feature_scaling = feature_scaling
        self.score_new_items = score_new_items
        self.device = device
        self.n_threads = n_threads
        self.seed = seed
        self._validate_params()  # BPR too: its __init__ ends here

    # ---- parameters ----
    def _uses_features(self) -> bool:
        return self.features is not None

    def _validate_params(self) -> None:
        check_count(self.k, "k")
        if self._uses_features():
            check_count(self.k2, "k2")
            if not isinstance(self.features, ItemFeatures):
                raise InvalidInput(f"features must be ItemFeatures, got {type(self.features).__name__}")
            self.features.check_finite(type(self).__name__)
            check_count(self.n_components, "n_components", allow_none=True)
            check_choice(self.feature_scaling, "feature_scaling", FEATURE_SCALINGS)
        check_count(self.n_epochs, "n_epochs")
        check_count(self.batch_size, "batch_size")
        check_positive(self.learning_rate, "learning_rate")
        for name in ("lambda_w", "lambda_b", "lambda_e"):
            check_positive(getattr(self, name), name, allow_zero=True)
        check_choice(self.negatives, "negatives", NEGATIVE_SAMPLERS)
        check_positive(self.positive_threshold, "positive_threshold", allow_zero=True, allow_none=True)
        check_count(self.seed, "seed", minimum=0)
        check_count(self.n_threads, "n_threads", allow_none=True)

    # ---- features ----
    def _feature_matrix(self, train_item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item ids scored, feature rows for them, mask of rows that had features)."""
        features = self.features
        train_items_with = np.isin(train_item_ids, features.item_ids)
        if not train_items_with.any():
            raise InvalidInput(
                f"{type(self).__name__}: features '{features.name}' cover none of the {len(train_item_ids)} "
                f"training items (features for {len(features)} items): were they extracted for another dataset?"
            )
        n_fit = int(train_items_with.sum())
        if self.n_components is not None and features.dim > self.n_components and n_fit > 1:
            from recsys.features.reduce import PCAReducer

            # fitted on the training items only: new items' content must not shape the basis
            components = min(int(self.n_components), n_fit)
            features = PCAReducer(components, random_state=self.seed).fit_transform(
                features, train_item_ids[train_items_with]
            )
        item_ids = train_item_ids
        if self.score_new_items:
            item_ids = np.union1d(train_item_ids, features.item_ids)
        matrix, present = features.aligned(item_ids)
        matrix = matrix.astype(np.float64)
        in_train = np.isin(item_ids, train_item_ids) & present
        if self.feature_scaling == "standard":
            mean = matrix[in_train].mean(axis=0)
            std = matrix[in_train].std(axis=0)
            matrix = np.where(present[:, None], (matrix - mean) / np.where(std > 0, std, 1.0), 0.0)
        elif self.feature_scaling == "l2":
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        return item_ids, matrix.astype(np.float32), present

    # ---- training ----
    def _resolve_device(self):
        import torch

        from recsys.config import torch_device

        return torch.device(self.device) if self.device else torch_device()

    def _fit(self, interactions: Interactions, progress) -> None:
        device = self._resolve_device()
        n_threads = self.n_threads
        if n_threads is None and device.type == "cpu" and len(interactions.pos_users) < SMALL_PROBLEM:
            n_threads = 1
        with _torch_threads(n_threads):
            self._train(interactions, progress, device)

    def _train(self, interactions: Interactions, progress, device) -> None:
        import torch

        started = time.perf_counter()
        n_users, n_train_items = interactions.shape
        uses_features = self._uses_features()
        if uses_features:
            item_ids, all_features, present = self._feature_matrix(interactions.item_ids)
            train_rows = pd.Index(item_ids).get_indexer(interactions.item_ids)
            feats = torch.from_numpy(all_features[train_rows]).to(device)
            dim = feats.shape[1]
        init = torch.Generator().manual_seed(int(self.seed))
        k, k2 = int(self.k), int(self.k2) if uses_features else 0
        params = {
            "beta": torch.zeros(n_train_items),
            "gamma_u": _xavier(init, (n_users, k)),
            "gamma_i": _xavier(init, (n_train_items, k)),
        }
        if uses_features:
            params["theta_u"] = _xavier(init, (n_users, k2))
            params["E"] = _xavier(init, (dim, k2))
            params["beta_prime"] = _xavier(init, (dim, 1))
        params = {name: value.to(device).requires_grad_(True) for name, value in params.items()}
        optimizer = torch.optim.Adam(list(params.values()), lr=float(self.learning_rate))

        rated = interactions.rated.tocoo()
        keys = torch.from_numpy(rated.row.astype(np.int64) * n_train_items + rated.col.astype(np.int64))
        keys, order = torch.sort(keys)
        key_ratings = torch.from_numpy(rated.data.astype(np.float32))[order].to(device)
        keys = keys.to(device)
        pos_u = torch.from_numpy(interactions.pos_users).to(device)
        pos_i = torch.from_numpy(interactions.pos_items).to(device)
        pos_r = torch.from_numpy(interactions.pos_ratings.astype(np.float32)).to(device)
        sampler = torch.Generator(device=device).manual_seed(int(self.seed) + 1)
        lower_rated = self.negatives == "lower_rated"

        def negatives(users, ratings):
            j = torch.randint(n_train_items, users.shape, generator=sampler, device=device)
            for _ in range(_MAX_RESAMPLES):
                key = users * n_train_items + j
                index = torch.searchsorted(keys, key).clamp_(max=len(keys) - 1)
                found = keys[index] == key
                bad = (torch.where(found, key_ratings[index], 0.0) >= ratings) if lower_rated else found
                if not bool(bad.any()):
                    break
                j = torch.where(bad, torch.randint(n_train_items, users.shape, generator=sampler, device=device), j)
            return j

        lw, lb, le = float(self.lambda_w), float(self.lambda_b), float(self.lambda_e)
        batch_size = int(self.batch_size)
        n_pos = len(pos_u)
        history = []
        for epoch in range(int(self.n_epochs)):
            permutation = torch.randperm(n_pos, generator=sampler, device=device)
            total = torch.zeros((), device=device)
            for start in range(0, n_pos, batch_size):
                batch = permutation[start : start + batch_size]
                u, i, r = pos_u[batch], pos_i[batch], pos_r[batch]
                j = negatives(u, r)
                gu, gi, gj = params["gamma_u"][u], params["gamma_i"][i], params["gamma_i"][j]
                bi, bj = params["beta"][i], params["beta"][j]
                x = bi - bj + (gu * (gi - gj)).sum(dim=1)
                reg = lw * (gu.square().sum() + gi.square().sum() + gj.square().sum())
                if uses_features:
                    tu = params["theta_u"][u]
                    weights = torch.cat([params["E"], params["beta_prime"]], dim=1)
                    if 2 * len(batch) < n_train_items:
                        projected_i, projected_j = feats[i] @ weights, feats[j] @ weights
                    else:  # project every item once: cheaper than two batch-sized products
                        projected = feats @ weights
                        projected_i, projected_j = projected[i], projected[j]
                    diff = projected_i - projected_j
                    x = x + (tu * diff[:, :k2]).sum(dim=1) + diff[:, k2]
                    reg = reg + lw * tu.square().sum() + le * weights.square().sum()
                reg = reg + lb * bi.square().sum() + lb / 10 * bj.square().sum()
                loss = -torch.nn.functional.logsigmoid(x).sum() + reg / 2
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            history.append(float(total) / n_pos)
            if progress is not None:
                progress(epoch + 1, int(self.n_epochs), f"epoch {epoch + 1}: loss {history[-1]:.4f}")

        values = {name: value.detach().cpu().numpy().astype(np.float64) for name, value in params.items()}
        item_ids = item_ids if uses_features else interactions.item_ids
        train_rows = pd.Index(item_ids).get_indexer(interactions.item_ids)
        n_items = len(item_ids)
        beta = np.zeros(n_items)
        beta[train_rows] = values["beta"]
        gamma_i = np.zeros((n_items, k))
        gamma_i[train_rows] = values["gamma_i"]
        user_factors, item_factors, item_bias = values["gamma_u"], gamma_i, beta
        if uses_features:
            f = all_features.astype(np.float64)
            theta_i = f @ values["E"]
            self.visual_bias_ = (f @ values["beta_prime"]).ravel()
            user_factors = np.hstack([values["gamma_u"], values["theta_u"]])
            item_factors = np.hstack([gamma_i, theta_i])
            item_bias = beta + self.visual_bias_
            self.projection_ = values["E"]
            self.features_present_ = present
        self.item_ids_ = item_ids
        self.new_item_ids_ = np.setdiff1d(item_ids, interactions.item_ids)
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors
        self.item_bias_ = item_bias
        self.loss_history_ = history
        self.device_ = str(device)
        self.train_seconds_ = time.perf_counter() - started

    def _score_codes(self, user_codes: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_codes] @ self.item_factors_.T + self.item_bias_

    def _fallback_scores(self) -> np.ndarray:
        return self.item_bias_.copy()


class BPR(VBPR):
    """BPR-MF (Rendle et al. 2009): VBPR's model, sampler and optimiser without item features.

    Defaults (k = 64, 15 epochs, batches of 1024, Adam lr 0.005, λ_w = 0.03, λ_b = 0.01,
    Cornac's "lower_rated" sampler) were tuned on ML-100K with Cornac's ratio protocol.
    """

    def __init__(
        self,
        k: int = 64,
        n_epochs: int = 15,
        batch_size: int = 1024,
        learning_rate: float = 0.005,
        lambda_w: float = 0.03,
        lambda_b: float = 0.01,
        negatives: str = "lower_rated",
        positive_threshold: float | None = None,
        device: str | None = None,
        n_threads: int | None = None,
        seed: int = 0,
    ):
        super().__init__(
            features=None,
            k=k,
            n_epochs=n_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            lambda_w=lambda_w,
            lambda_b=lambda_b,
            negatives=negatives,
            positive_threshold=positive_threshold,
            device=device,
            n_threads=n_threads,
            seed=seed,
        )
