"""privgov's stable import name for the Python API: ``from privgov import api``.

The platform's code lives in the ``governance``, ``policies``, ``privacy`` and
``training`` packages; ``privgov.api`` re-exports ``governance.api``, the one
documented, typed surface (see ``docs/api.md``).
"""
