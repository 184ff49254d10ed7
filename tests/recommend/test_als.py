"""The NumPy implicit ALS: it recovers block structure, and matches a plain per-member solve."""

from __future__ import annotations

import numpy as np

from jifen.recommend import als


def test_members_who_share_taste_get_each_others_items():
    # Two groups: members 0-9 use items 0-2, members 10-19 use items 3-5; member 0 never used item 2.
    rows, cols = [], []
    for m in range(20):
        for item in (range(0, 3) if m < 10 else range(3, 6)):
            if (m, item) != (0, 2):
                rows.append(m)
                cols.append(item)
    model = als.fit(np.array(rows), np.array(cols), np.ones(len(rows)), 21, 6, factors=4, iterations=15)
    scores = model.scores()
    assert scores[0, 2] > scores[0, 3:].max()  # the group's item first, for the member who lacks it
    assert scores[15, 3:].min() > scores[15, :3].max()
    assert not scores[20].any()  # no history: no opinion (cold start is the ranker's job)


def test_half_step_is_the_paper_normal_equation():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(5, 3))
    owner, other, strength = np.array([0, 0, 1]), np.array([1, 4, 2]), np.array([2.0, 5.0, 1.0])
    got = als._half_step(owner, other, strength, y, 2, 0.1)
    for u in (0, 1):
        c = np.ones(5)
        p = np.zeros(5)
        for o, i, s in zip(owner, other, strength, strict=True):
            if o == u:
                c[i], p[i] = 1 + s, 1
        want = np.linalg.solve(y.T @ np.diag(c) @ y + 0.1 * np.eye(3), y.T @ (c * p))
        assert np.allclose(got[u], want)
