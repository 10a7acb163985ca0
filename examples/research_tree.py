"""A research tree: a root session fans out to researchers and composes their findings.

This is the demo that ``make demo`` and ``sessiontree demo`` run. Its code lives in the
package, in ``sessiontree/console/demo.py`` (written against the public API only, like
any host program), so that an installed sessiontree runs it too; read it there. This
script runs it from a checkout::

    python examples/research_tree.py --db demo.db --workspace demo-workspace \\
        [--children N] [--latency S] [--no-live]

``setup`` (the runtime factory that registers the demo's provider and tools) is
re-exported, so ``sessiontree recover --db demo.db --app examples/research_tree.py:setup``
resumes a killed demo from here too.
"""

from sessiontree.console.demo import main, setup

__all__ = ["main", "setup"]

if __name__ == "__main__":
    raise SystemExit(main())
