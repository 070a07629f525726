"""The authors' loop, for the benchmarks: it lives in the package now, :mod:`blendlab.reference`,
where the tests import it as their oracle; this name keeps the benchmarks' old imports working.

May import: blendlab.
"""

from blendlab.reference import REFERENCE_TRAINABLE_KEYS, ReferenceSampler, reference_run, reference_trainable

__all__ = ["REFERENCE_TRAINABLE_KEYS", "reference_trainable", "ReferenceSampler", "reference_run"]
