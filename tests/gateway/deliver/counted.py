"""A Delivery that counts its trips to the queue's worker thread (every queue call goes through _queue)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.deliver.dispatch import Delivery

T = TypeVar("T")


class CountedDelivery(Delivery):
    trips = 0

    async def _queue(self, call: Callable[..., T], *args: object) -> T:
        self.trips += 1
        return await super()._queue(call, *args)
