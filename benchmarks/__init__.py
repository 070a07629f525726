"""Speed benchmarks of blendlab (not part of the installed package); see benchmarks/README.md.

May import: nothing.
"""
