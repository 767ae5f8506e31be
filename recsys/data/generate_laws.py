"""The sampling laws of the MovieLens-shaped generator (:mod:`recsys.data.generate`).

What lives here are the pieces of the model that are plain distributions, separate from the
generator that combines them chunk by chunk: the Zipf-Mandelbrot popularity law with its exact
O(1) sampler (:class:`Popularity`), the log-normal user activity scaled to an exact total
(:func:`user_activity`) and the made-up movie titles (:func:`made_up_titles`). Each takes a numpy
``Generator``, so the output is a function of the caller's random stream only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.generate import Model, Shape


class Popularity:
    """Zipf-Mandelbrot law over popularity ranks 0..n-1: rank r has weight
    ``w_r = integral over [r, r+1) of (x + q) ** -a dx``, so that ``floor(x)`` with x drawn by
    inverting the continuous CDF is an exact O(1) sampler of the discrete law (no search)."""

    def __init__(self, n: int, exponent: float, offset: float):
        self.n, self.a, self.q = n, float(exponent), max(float(offset), 1e-9)
        self.lo, self.hi = self._primitive(0.0), self._primitive(float(n))
        edges = self._primitive(np.arange(n + 1, dtype=float))
        self.weights = np.diff(edges) / (self.hi - self.lo)  # probabilities, sum 1
        # expected distinct ranks after D draws, on a log grid of D (inverted by draws_for)
        self._grid = np.unique(np.round(np.geomspace(1, 1e9, 400)))
        p = self.weights
        self._distinct = np.array([np.sum(-np.expm1(-d * p)) for d in self._grid])

    def _primitive(self, x):
        if abs(self.a - 1.0) < 1e-12:
            return np.log(x + self.q)
        return (x + self.q) ** (1.0 - self.a) / (1.0 - self.a)

    def sample(self, rng, size: int) -> np.ndarray:
        y = self.lo + rng.random(size) * (self.hi - self.lo)
        if abs(self.a - 1.0) < 1e-12:
            x = np.exp(y) - self.q
        else:
            x = (y * (1.0 - self.a)) ** (1.0 / (1.0 - self.a)) - self.q
        return np.minimum(x.astype(np.int64), self.n - 1)

    def draws_for(self, distinct: np.ndarray) -> np.ndarray:
        """The expected number of i.i.d. draws that yield `distinct` different ranks."""
        target = np.minimum(np.asarray(distinct, dtype=float), self._distinct[-1])
        return np.interp(target, self._distinct, self._grid)


def user_activity(rng, shape: Shape, model: Model) -> np.ndarray:
    """Ratings per user: min_ratings + a log-normal excess scaled to hit n_ratings exactly, capped."""
    n_users, total = shape.n_users, shape.n_ratings
    cap = max(model.min_ratings, int(model.max_user_share * shape.n_movies))
    if cap * n_users < total:
        cap = shape.n_movies
    spare, room = total - model.min_ratings * n_users, cap - model.min_ratings
    weight = np.exp(model.activity_sigma * rng.standard_normal(n_users))
    excess = np.zeros(n_users)
    free = np.ones(n_users, dtype=bool)
    for _ in range(100):  # water-filling: scale, clip at the cap, give the rest to the others
        left = spare - excess[~free].sum()
        excess[free] = weight[free] * (left / weight[free].sum())
        over = free & (excess > room)
        if not over.any():
            break
        excess[over] = room
        free &= ~over
    whole = np.floor(excess).astype(np.int64)
    missing = int(spare - whole.sum())
    if missing:  # largest remainders get one more (never past the cap)
        remainder = np.where(whole < room, excess - whole, -1.0)
        whole[np.argsort(-remainder, kind="stable")[:missing]] += 1
    return model.min_ratings + whole


_WORDS_A = (
    "Crimson Silent Broken Golden Last Hidden Midnight Electric Lonely Wild Frozen Secret Burning Velvet Iron "
    "Paper Distant Restless Neon Quiet Little Dark Bright Endless Savage Gentle Hollow Lucky Scarlet Sleeping "
    "Northern Stolen Perfect Crooked Falling Sweet Bitter Forgotten Dangerous Final"
).split()
_WORDS_B = (
    "Harbor Kingdom Garden Signal Horizon Empire River Promise Shadow Machine Summer Witness Station Island "
    "Letter Storm Circus Frontier Mirror Orchard City Road Heart Night Dream Game House Man Woman Girl Boy "
    "Country Love War Money Sky Train Window Secret Hunter"
).split()
_SUBTITLES = "Return Revenge Awakening Legacy Reckoning Homecoming Beginning Escape Confession Rebellion".split()
_ACCENTED = ["Amélie", "Café", "Señor", "Noël", "Fiancé", "Müller", "Øresund", "Déjà Vu"]
_ROMAN = ["", " II", " III", " IV", " V", " VI", " VII"]


def made_up_titles(rng, n: int) -> list[str]:
    """Made-up titles; ~8 % "Word, The" (a comma), ~1 % with quotes, ~0.5 % accented (UTF-8)."""
    a = rng.integers(len(_WORDS_A), size=n)
    b = rng.integers(len(_WORDS_B), size=n)
    sub = rng.integers(-6 * len(_SUBTITLES), len(_SUBTITLES), size=n)  # >= 0: has a subtitle
    sequel = np.minimum(rng.geometric(0.85, size=n) - 1, len(_ROMAN) - 1)
    kind = rng.random(n)
    accent = rng.integers(len(_ACCENTED), size=n)
    titles = []
    for i in range(n):
        title = f"{_WORDS_A[a[i]]} {_WORDS_B[b[i]]}{_ROMAN[sequel[i]]}"
        if sub[i] >= 0:
            title += f": {_SUBTITLES[sub[i]]}"
        if kind[i] < 0.08:
            title = f"{_WORDS_B[b[i]]}{_ROMAN[sequel[i]]}, The"
        elif kind[i] < 0.09:
            title = f'"{_WORDS_A[a[i]]}" {_WORDS_B[b[i]]}'
        elif kind[i] < 0.095:
            title = f"{_ACCENTED[accent[i]]} {_WORDS_B[b[i]]}"
        titles.append(title)
    return titles
