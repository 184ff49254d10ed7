"""Ranking rewards for members. Each (member, reward) pair gets features read from the history before a
moment — collaborative filtering (ALS), the reward's popularity within the member's tier (smoothed toward
the whole programme's: the cold start), the member's share of interactions in the reward's category,
whether the balance then pays for it and how much of the balance it uses, and whether the member took it
before — and a logistic regression learns their weights from who redeemed what in the window before that
moment. Everything is arrays over members × rewards, no loop over members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jifen.lazy import lazy_import
from jifen.recommend import als
from jifen.recommend.history import History

if TYPE_CHECKING:
    import numpy as np
    from sklearn import linear_model
else:
    np = lazy_import("numpy")
    linear_model = lazy_import("sklearn.linear_model")

FEATURES = ("cf", "tier_popularity", "category", "affordable", "balance_share", "taken_before")
SMOOTHING = 20.0  # pseudo-redemptions of the programme-wide popularity added to each tier's counts


def popularity(h: History, before: np.datetime64, members: np.ndarray) -> np.ndarray:
    """Share of the redemptions before `before` that each reward had within each member's tier, smoothed
    toward its share in the whole programme (so a tier with few redemptions borrows from all)."""
    past = h.redeemed & (h.when < before)
    n_items = h.reward_ids.size
    overall = np.bincount(h.what[past], minlength=n_items).astype(float)
    overall_share = (overall + 1) / (overall.sum() + n_items)
    tiers, tier_of = np.unique(h.tiers.astype(str), return_inverse=True)
    counts = np.zeros((tiers.size, n_items))
    np.add.at(counts, (tier_of[h.who[past]], h.what[past]), 1)
    share = (counts + SMOOTHING * overall_share) / (counts.sum(axis=1, keepdims=True) + SMOOTHING)
    return share[tier_of[members]]


def factors(h: History, before: np.datetime64) -> als.Factors:
    past = h.when < before
    return als.fit(h.who[past], h.what[past], h.weight[past], h.member_pks.size, h.reward_ids.size)


def features(h: History, before: np.datetime64, members: np.ndarray, balances: np.ndarray,
             model: als.Factors | None = None) -> np.ndarray:
    """(members, rewards, FEATURES) from what happened before `before`; balances are the members' points then.
    `model`: the factors fitted on that history, when the caller has them already."""
    past = h.when < before
    n_members, n_items = h.member_pks.size, h.reward_ids.size
    cf = (model or factors(h, before)).scores(members)
    seen = np.zeros((n_members, n_items))
    np.add.at(seen, (h.who[past], h.what[past]), h.weight[past])
    cats, cat_of = np.unique(h.categories.astype(str), return_inverse=True)
    per_cat = np.zeros((n_members, cats.size))
    np.add.at(per_cat, (h.who[past], cat_of[h.what[past]]), h.weight[past])
    totals = per_cat.sum(axis=1, keepdims=True)
    category = np.divide(per_cat, totals, out=np.zeros_like(per_cat), where=totals > 0)[members][:, cat_of]
    balance = balances[:, None]
    affordable = (h.prices[None, :] <= balance).astype(float)
    share = np.divide(h.prices[None, :], balance, out=np.zeros((members.size, n_items)), where=balance > 0) * affordable
    taken = np.zeros((n_members, n_items))
    redeemed = past & h.redeemed
    np.add.at(taken, (h.who[redeemed], h.what[redeemed]), 1)
    return np.stack([cf, popularity(h, before, members), category, affordable, share,
                     (taken[members] > 0).astype(float)], axis=-1)


@dataclass
class Ranker:
    model: linear_model.LogisticRegression | None  # None: too little history to learn from; popularity alone then

    def scores(self, x: np.ndarray) -> np.ndarray:
        if self.model is None:
            return x[..., FEATURES.index("tier_popularity")]
        return self.model.decision_function(x.reshape(-1, len(FEATURES))).reshape(x.shape[:-1])


def train(h: History, start: np.datetime64, end: np.datetime64) -> Ranker:
    """Learn the weights from the members' redemptions in [start, end), features read before `start`."""
    members = np.arange(h.member_pks.size)
    x = features(h, start, members, h.balances_at(start))
    y = np.zeros(x.shape[:2], dtype=bool)
    window = h.redeemed & (h.when >= start) & (h.when < end)
    y[h.who[window], h.what[window]] = True
    if y.sum() < 5 or y.all():
        return Ranker(None)
    model = linear_model.LogisticRegression(max_iter=1000, class_weight="balanced")
    return Ranker(model.fit(x.reshape(-1, len(FEATURES)), y.ravel()))


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best reward indices per row, best first (ties: the lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]
