"""What the ``sessiontree`` commands share: exit codes, the one-line error, store and
app loading."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from sessiontree._errors import SessionTreeError
from sessiontree._runtime import Runtime
from sessiontree._states import TERMINAL_VALUES
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.store import Store

OK, BAD_OUTCOME, CANNOT_RUN, INTERRUPTED = 0, 1, 2, 130

HOLD_STATES = ("awaiting_operator", "awaiting_consent", "paused")
TERMINAL = TERMINAL_VALUES  # the name the console modules use

SetupFn = Callable[[Runtime], None]


class CommandError(Exception):
    """A failure the user can act on: printed as one line, never as a traceback."""

    def __init__(self, message: str, code: int = CANNOT_RUN) -> None:
        super().__init__(message)
        self.code = code


def _err(message: str) -> None:
    print(f"sessiontree: {message}", file=sys.stderr)


def _console() -> Any:
    """A rich console for the commands: on a terminal as wide as it is; piped or
    redirected, lines are never wrapped (a tool reading them gets one line a node)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, soft_wrap=True)


@contextlib.contextmanager
def _reader(db: str) -> Iterator[Store]:
    """Open an existing store without the owner lease (safe beside a live host)."""
    try:
        store = open_store(db, create=False)
    except SessionTreeError as exc:
        message = str(exc)
        raise CommandError(message if db in message else f"cannot open store {db}: {message}") from exc
    try:
        yield store
    finally:
        store.close()


def _require_store(db: str) -> None:
    """Refuse to create a store by accident: ``recover`` needs one that exists."""
    with _reader(db):
        pass


def load_module_from_file(path: Path, name: str) -> ModuleType:
    """Import a Python file as module ``name`` (registered in ``sys.modules``, which
    pydantic needs to resolve the annotations of models defined in it)."""
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_app(spec: str) -> SetupFn:
    """``MODULE:ATTR`` (imported, the current directory on the path) or
    ``path/to/file.py:ATTR``; the attribute must be a callable taking the runtime."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise CommandError(f"--app must be MODULE:ATTR or FILE.py:ATTR, not {spec!r}")
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise CommandError(f"cannot load app {spec}: no file {target}")
            module = load_module_from_file(path, f"sessiontree_app_{path.stem}")
        else:
            cwd = str(Path.cwd())
            added = cwd not in sys.path
            if added:
                sys.path.insert(0, cwd)
            try:
                module = importlib.import_module(target)
            finally:
                if added:
                    sys.path.remove(cwd)
        factory = getattr(module, attr)
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"cannot load app {spec}: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise CommandError(f"app {spec} is not callable")

    def setup(rt: Runtime) -> None:
        try:
            factory(rt)
        except SessionTreeError:
            raise
        except Exception as exc:
            raise CommandError(f"app {spec} failed: {type(exc).__name__}: {exc}") from exc

    return setup
