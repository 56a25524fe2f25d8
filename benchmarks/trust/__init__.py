"""The parts of ``benchmarks/trust.py`` (the gate's trust, measured): ``sweeps`` runs the
pytest processes and knows where a batch keeps them, ``verdicts`` judges a pair of runs,
``report`` prints the tables, ``noisy`` runs the noisy neighbour.

The regressed builds beside them (``extra_copy.py``, ``small_sndbuf.py``) are not part
of the package: each run loads one as a pytest plugin (``-p extra_copy``, with this
folder on ``PYTHONPATH``).
"""
