"""How many CSV exports one api process streams at once.

Each export holds one database connection for as long as it streams (minutes, for a month of a
busy symbol): without a cap, a few clients exporting would hold the whole pool and every other
question would wait for a connection.
"""


class ExportSlots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free; never waits (the event loop runs one coroutine at a time,
        so the check and the count are one step)."""
        if self.in_use >= self.capacity:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1
