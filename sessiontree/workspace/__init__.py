"""Workspace safety: sessions touch files only through workspace tools, inside their
workspace root, under one of two declared modes, and every conflict is decided at
once with an explicit reason.

- ``binding``    which directory and mode a session gets (``locked`` | ``worktree``)
- ``paths``      path safety: resolve inside the root or refuse (shared by every file tool)
- ``files``      reads, atomic writes, deletes, listings on resolved paths
- ``globs``      path globs (leases, ``fs.*:<glob>`` capability scopes)
- ``leasing``    path leases: reads share, writes exclude, conflicts refused at once
- ``git``        the hardened ``git`` command line
- ``worktrees``  own worktrees and branches: create, commit, merge, remove
- ``patch``      unified diffs, parsed and applied in memory
- ``operations`` the file operations behind the tools; ``merging``: ``merge_child``
- ``service``    :class:`Workspaces`, the layer's entry point, one per runtime

Layering: imports persistence and the core values only; ``tools`` builds the
workspace tools on it (``tools.files``), the runtime and the scheduler bind with it.
"""

from sessiontree.workspace.binding import WorkspaceMode
from sessiontree.workspace.service import Workspaces

__all__ = ["WorkspaceMode", "Workspaces"]
