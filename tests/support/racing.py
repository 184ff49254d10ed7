"""Release many attempts at the same instant, the way a peak hits one row."""

from __future__ import annotations

import threading

from jifen.errors import JifenError


def race(work, items):
    """Run work(item) for every item on its own thread, all let go by one barrier; return what they raised."""
    items = list(items)
    errors, barrier = [], threading.Barrier(len(items))

    def run(item):
        barrier.wait()
        try:
            work(item)
        except Exception as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def outcomes(work, items, win="ok"):
    """What each racer got: `win` when work succeeded, else the code of the JifenError it was refused with."""
    results = []

    def attempt(item):
        try:
            work(item)
        except JifenError as exc:
            results.append(exc.code)
        else:
            results.append(win)

    unexpected = race(attempt, items)
    assert unexpected == [], unexpected
    return results
