"""Sinks: where records go from the durable queue. They register by name, like the pipeline's stages.

A sink is one module plus a registration::

    @SINKS.register("mqtt")
    class MqttSink:
        def __init__(self, name: str, broker: str, topic: str = "sitewatch") -> None: ...
        async def send(self, batch: Batch) -> int: ...
        def close(self) -> None: ...

and the configuration asks for it by that name (``[[sink]] type = "mqtt"``;
the other keys of the table are the factory's parameters, checked against
its signature so that a misspelt key is an error naming the sink). Every
factory takes the sink's ``name`` (its cursor in the queue) first.

``send`` gets the records after the sink's cursor, oldest first, and returns
how many of them, from the front, it delivered for good; the queue then
moves the sink's cursor past those. Raising (or returning 0) means "nothing
delivered, try again later": the dispatcher (dispatch.py) backs off and
retries, and no other sink waits for it. A sink that cannot use a kind of
record (an HJ 212 uplink and an outage record, say) counts it as delivered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.deliver.queue import Batch


class SinkError(RuntimeError):
    """A sink could not deliver (the dispatcher logs it, backs off and retries).

    retry_after: how long the server asked us to wait (HTTP 429/503 Retry-After),
    in seconds; the dispatcher waits that long instead of its own backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkFatalError(SinkError):
    """A sink that will never succeed as configured (a bad token, a missing database or bucket).

    The dispatcher stops retrying that sink, logs the message once as an error
    and shows it in the sink's stats (``DeliveryStats.fatal``); its records wait
    in the queue until the configuration is fixed and the gateway restarted.
    """


class SinkConfigError(LookupError):
    """Unknown sink type, or parameters the sink does not take."""


class Sink(Protocol):
    name: str

    async def send(self, batch: Batch) -> int: ...

    def close(self) -> None: ...


SinkFactory = Callable[..., Sink]


class SinkRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, SinkFactory] = {}

    def register(self, name: str) -> Callable[[SinkFactory], SinkFactory]:
        def decorate(factory: SinkFactory) -> SinkFactory:
            if name in self._factories:
                raise SinkConfigError(f"sink {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> SinkFactory:
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise SinkConfigError(f"unknown sink type {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def check(self, type_name: str, params: Mapping[str, object]) -> SinkFactory:
        """The factory of `type_name`, after checking that it takes `params` (and a name)."""
        factory = self.get(type_name)
        try:
            inspect.signature(factory).bind("name", **params)
        except TypeError as error:
            raise SinkConfigError(f"sink {type_name!r}: {error}") from None
        return factory

    def create(self, type_name: str, name: str, params: Mapping[str, object]) -> Sink:
        return self.check(type_name, params)(name, **params)


SINKS = SinkRegistry()


def load_builtin_sinks() -> None:
    """Import the modules whose sinks register themselves."""
    from gateway.deliver import hj212, influx, jsonl, mqtt, sqlite_store  # noqa: F401 - imported for their registrations


@dataclass(frozen=True)
class Lane:
    """One cursor of a sink in the queue, and the record kinds it reads (None: all; skip: all but these).

    Most sinks have one lane, named after the sink. A sink may declare
    ``lanes`` to get several, each delivered by its own task: the MQTT sink
    reads alarm events on a lane of their own, so an alarm is published at
    once, not behind a backlog of readings. Each lane is a cursor in the queue,
    so this survives restarts like any cursor.
    """

    cursor: str
    kinds: frozenset[str] | None = None
    skip: frozenset[str] | None = None


def lanes_of(sink: Sink) -> tuple[Lane, ...]:
    lanes: tuple[Lane, ...] | None = getattr(sink, "lanes", None)
    return lanes if lanes else (Lane(sink.name),)
