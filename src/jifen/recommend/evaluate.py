"""How well the recommendations would have done: split by time — everything before a cutoff is known, the
redemptions in the held-out period after it are what members then chose — and for the members who redeemed
in that period, precision@k (share of the k suggestions they took) and hit rate (share of members who took
at least one), beside the baselines: the programme's most redeemed rewards, and the most redeemed in the
member's tier. The ranker learns its weights from the window of the same length before the cutoff."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jifen.lazy import lazy_import
from jifen.recommend import rank
from jifen.recommend.history import History

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")


def _metrics(picks: np.ndarray, truth: np.ndarray, k: int) -> dict:
    hits = np.take_along_axis(truth, picks, axis=1).sum(axis=1)
    return {"precision_at_k": round(float(hits.mean() / k), 4) if hits.size else 0.0,
            "hit_rate": round(float((hits > 0).mean()), 4) if hits.size else 0.0}


def evaluate(h: History, cutoff: np.datetime64, end: np.datetime64, k: int = 3) -> dict:
    window = end - cutoff
    held = h.redeemed & (h.when >= cutoff) & (h.when < end)
    members = np.unique(h.who[held])
    truth = np.zeros((members.size, h.reward_ids.size), dtype=bool)
    truth[np.searchsorted(members, h.who[held]), h.what[held]] = True
    ranker = rank.train(h, cutoff - window, cutoff)
    x = rank.features(h, cutoff, members, h.balances_at(cutoff)[members])
    past = h.redeemed & (h.when < cutoff)
    overall = np.bincount(h.what[past], minlength=h.reward_ids.size).astype(float)
    methods = {
        "popularity": np.broadcast_to(overall, truth.shape),
        "popularity in tier": x[..., rank.FEATURES.index("tier_popularity")],
        "collaborative filtering": x[..., rank.FEATURES.index("cf")],
        "model": ranker.scores(x),
    }
    return {"k": k, "members": int(members.size), "redemptions": int(held.sum()),
            "trained": ranker.model is not None,
            "methods": {name: _metrics(rank.top(np.asarray(s), k), truth, k) for name, s in methods.items()}}
