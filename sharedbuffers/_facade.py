"""Where the public (1.x-compatible) names say they live.

Pickles written by sharedbuffers 1.x name their globals ``sharedbuffers.mapped_struct.X``
(FORMAT.md §10.2), and 1.x reads ours the same way.  The classes themselves live in the
modules that implement them; :func:`public` makes them pickle under the facade's name.
"""

FACADE_MODULE = 'sharedbuffers.mapped_struct'


def public(obj):
    """Mark a class or function as pickled by reference to ``sharedbuffers.mapped_struct``."""
    obj.__module__ = FACADE_MODULE
    return obj
