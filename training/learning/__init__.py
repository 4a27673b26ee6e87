"""Learning from people's feedback: one round turns ratings and corrections into a candidate model,
judges it on held-out photos and promotes it only when it is better (``run_round``).

The parts: :mod:`.policy` (settings a round reads), :mod:`.hygiene` (untrusted corrections in, usable
targets out), :mod:`.growth` (new words), :mod:`.targets` (the round's training and held-out sets),
:mod:`.photo_features` (cached encoder grids), :mod:`.tuning` (weighted fine-tuning with
unlikelihood), :mod:`.gate` (scores and the decision), :mod:`.round` (one round, end to end).
"""
