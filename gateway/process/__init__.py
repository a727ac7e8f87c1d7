"""Processing stage: processors, aggregators, alarms and the spray linkage (pure, no I/O).

Importing this package registers every stage by name (gateway.process.registry).
"""

from gateway.process import alarms, noise, pm, processors, tilt, wind
from gateway.process.registry import AGGREGATORS, ALARMS, PROCESSORS, create_aggregator, create_alarms, create_processor

__all__ = [
    "AGGREGATORS",
    "ALARMS",
    "PROCESSORS",
    "alarms",
    "create_aggregator",
    "create_alarms",
    "create_processor",
    "noise",
    "pm",
    "processors",
    "tilt",
    "wind",
]
