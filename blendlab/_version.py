"""blendlab's version, in a room of its own so that rooms can name it without importing the package.

May import: nothing.
"""

__version__ = "0.1.0"
