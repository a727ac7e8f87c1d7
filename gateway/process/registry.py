"""Stages register by name so that the config can ask for them by name.

A module adds a stage with a decorator::

    @PROCESSORS.register("range")
    class RangeCheck: ...

and the config builds it with ``PROCESSORS.create("range", limits, {"channels": ["pm10"]})``.
Every factory is called as ``factory(limits, **params)`` where ``limits`` is
the site's ``LimitsResolver`` and ``params`` is the stage's TOML table
without its ``type`` key. Parameters are checked against the factory's
signature first, so a misspelt key is a ``RegistryError`` naming the stage,
not a ``TypeError`` from deep inside a constructor.

The registries are filled when their modules are imported; importing
``gateway.process`` imports them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from gateway.model import Reading
from gateway.process.aggregate import Aggregate
from gateway.process.limits import LimitsResolver

if TYPE_CHECKING:
    from gateway.process.alarms import AlarmDefinition


class RegistryError(LookupError):
    """Unknown stage name, duplicate registration, or parameters the stage does not take."""


class Processor(Protocol):
    """Reading in, readings out (usually the same reading with its quality adjusted)."""

    def process(self, reading: Reading) -> list[Reading]: ...

    # Optional: ``warm(reading) -> None`` takes in a queued (processed) reading at a restart, to
    # rebuild what the processor remembers (ProcessStage.warm; the spike filter's window).
    # Optional: ``process_poll(readings) -> list[Reading]``, the same as ``process`` on each reading in
    # turn, for a whole poll at once (ProcessStage prefers it: issue 13).


class Aggregator(Protocol):
    """Fed readings in time order; returns aggregates as their windows close."""

    def feed(self, reading: Reading) -> list[Aggregate]: ...

    def advance(self, now: float) -> list[Aggregate]: ...


F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._factories:
                raise RegistryError(f"{self.what} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> F:
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise RegistryError(f"unknown {self.what} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def bind(self, name: str, limits: LimitsResolver, params: Mapping[str, object]) -> F:
        """The factory of `name`, after checking that it accepts `params`."""
        factory = self.get(name)
        try:
            inspect.signature(factory).bind(limits, **params)
        except TypeError as exc:
            raise RegistryError(f"{self.what} {name!r}: {exc}") from None
        return factory


ProcessorFactory = Callable[..., Processor]
AggregatorFactory = Callable[..., Aggregator]
AlarmFactory = Callable[..., "list[AlarmDefinition]"]

PROCESSORS: Registry[ProcessorFactory] = Registry("processor")
AGGREGATORS: Registry[AggregatorFactory] = Registry("aggregator")
ALARMS: Registry[AlarmFactory] = Registry("alarm")


def create_processor(name: str, limits: LimitsResolver, params: Mapping[str, object] | None = None) -> Processor:
    params = dict(params or {})
    return PROCESSORS.bind(name, limits, params)(limits, **params)


def create_aggregator(name: str, limits: LimitsResolver, params: Mapping[str, object] | None = None) -> Aggregator:
    params = dict(params or {})
    return AGGREGATORS.bind(name, limits, params)(limits, **params)


def create_alarms(
    name: str, limits: LimitsResolver, params: Mapping[str, object] | None = None
) -> list[AlarmDefinition]:
    params = dict(params or {})
    return ALARMS.bind(name, limits, params)(limits, **params)
