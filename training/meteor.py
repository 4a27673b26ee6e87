"""METEOR 1.5 from pycocoevalcap's jar, fed exactly as its compute_score does, and always shut down
afterwards (it needs `java`)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence


def java_available() -> bool:
    return shutil.which("java") is not None


def _close_meteor(scorer, worker: threading.Thread) -> None:
    """End the jar now rather than in Meteor.__del__ (at some later garbage collection), which blocks
    forever on the scorer's lock if compute_score died half-way: it only releases it on success."""
    proc = getattr(scorer, "meteor_p", None)
    if proc is not None:
        proc.kill()  # first: a pipe cannot be closed while the worker is blocked on it
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:  # unflushed input to a dead process
                pass
    worker.join(5)
    lock = getattr(scorer, "lock", None)
    if lock is not None and lock.locked():
        lock.release()


def meteor_score(candidates: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float = 600.0) -> float:
    """Corpus METEOR 1.5 from pycocoevalcap's jar (needs `java`).  Raises TimeoutError if the jar has not
    answered within `timeout` seconds; the subprocess is ended in every case."""
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [cand] for i, cand in enumerate(candidates)}
    scorer = Meteor()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["score"] = scorer.compute_score(gts, res)[0]
        except BaseException as exc:  # reported to the caller below
            outcome["error"] = exc

    # compute_score blocks on the jar's stdout; a watchdog thread lets us give up and kill the jar.
    worker = threading.Thread(target=run, name="meteor", daemon=True)
    try:
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise TimeoutError(f"METEOR gave no answer within {timeout:.0f} s")
    finally:
        _close_meteor(scorer, worker)
    if "error" in outcome:
        raise RuntimeError(f"METEOR failed: {outcome['error']!r}") from outcome["error"]
    return float(outcome["score"])
