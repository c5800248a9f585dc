"""Named choices of one kind (fusions, encoders, baseline models, ...), each kind in one registry.

A registry is the one list of its kind's names: an unknown name is an error that lists the known
ones, never a silent default, and a test holds the params schema's `Literal` of the kind equal to
it (params.py does not import the layers that own the choices).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

from harfusion.errors import HarfusionError

T = TypeVar("T")


class Registry(Mapping[str, T]):
    def __init__(self, kind: str, choices: Mapping[str, T]) -> None:
        self.kind = kind
        self._choices = dict(choices)

    def __getitem__(self, name: str) -> T:
        try:
            return self._choices[name]
        except KeyError:
            raise UnknownChoice(self.kind, name, tuple(self._choices)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)


class UnknownChoice(HarfusionError, KeyError):
    """A name no registry entry has; a KeyError too, so `name in registry` and `.get` work."""

    def __init__(self, kind: str, name: object, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown {kind} {name!r}; the choices are {', '.join(known)}")

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0])
