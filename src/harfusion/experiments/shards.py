"""`--shard I/N`: the I-th of N disjoint slices of a planned list of experiments, one per machine.

Runs are dealt out in turn (run k goes to shard k mod N), so the slices differ in size by one at
most and every configuration's seeds and folds spread over the machines. The plan's order is fixed
by the command line and the checked-out commit (ablations.yaml order, then seeds; LOSO: subjects,
then seeds), so N machines running the same command on the same commit split it the same way.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import TypeVar

from harfusion.errors import HarfusionError

T = TypeVar("T")
SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = SPEC.match(text)
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise HarfusionError(f"--shard: expected I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def argument(cls, text: str) -> Shard:
        """`parse` as an argparse type: a bad value is a usage error before anything runs."""
        try:
            return cls.parse(text)
        except HarfusionError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard: ")) from None

    def take(self, runs: list[T]) -> list[T]:
        return runs[self.index - 1 :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
