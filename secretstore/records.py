"""Small value types without ``dataclasses``.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``)
and generates code at class creation: about 12 ms, almost a whole
``python -c pass``, on ``exec``'s start-up path. These records need only
equality, hashing and a repr, which ``__slots__`` gives cheaply. Subclasses
assign their fields directly in ``__init__`` (10,000 entries are built per
large file) and treat them as read-only by convention.
"""

from __future__ import annotations


class Record:
    """Equality, hash and repr from ``__slots__``; attributes are set once, in ``__init__``."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def replace(self, **changes: object):  # type: ignore[no-untyped-def]
        """A copy with some fields changed, like ``dataclasses.replace``."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"
