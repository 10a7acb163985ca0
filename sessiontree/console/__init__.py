"""The ``sessiontree`` command line and the rich live tree view.

The only place in the package that prints: everything else logs.
"""
