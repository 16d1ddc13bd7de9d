"""`record`: the dataclass of every event, notice and effect — immutable to the type checker, built
as plain slots (a frozen dataclass's `__init__` costs ~3× more, and the AMI path builds thousands)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]:
    """A slotted dataclass that mypy treats as frozen (assigning a field is a type error), hashed
    and compared by its fields like a frozen one. At run time it is not frozen: a frozen
    dataclass writes each field through `object.__setattr__`, which made building events and
    notices a tenth of the AMI pipeline's time. Nothing may assign a field after `__init__`."""

    def build(cls: type[_T]) -> type[_T]:
        return dataclass(slots=True, kw_only=kw_only, unsafe_hash=True)(cls)

    return build
