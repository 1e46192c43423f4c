"""Ids unique across processes without a random read (a syscall) each time."""

import itertools
import os
import uuid


class UniqueIds:
    """A random prefix per process (a forked child draws its own) and a counter."""

    def __init__(self, prefix_chars: int = 16) -> None:
        self.prefix_chars = prefix_chars
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = uuid.uuid4().hex[: self.prefix_chars]
        self.counter = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"
