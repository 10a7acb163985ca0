"""Base for public value models: invalid arguments raise our InvalidInput."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from sessiontree._errors import InvalidInput


class PublicModel(BaseModel):
    """A pydantic model whose direct construction fails with :class:`InvalidInput`
    (a ``SessionTreeError`` and a ``ValueError``), never a bare pydantic error."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid {type(self).__name__}: {exc}") from exc
