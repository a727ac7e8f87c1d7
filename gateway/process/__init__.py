"""Processing stage: processors, aggregators, alarms and the spray linkage (pure, no I/O).

Importing this package registers every stage by name (gateway.process.registry).
"""

from gateway.process import alarms, noise, pm, processors, tilt, wind
from gateway.process.kind_stages import install_stages
from gateway.process.registry import AGGREGATORS, ALARMS, PROCESSORS, create_aggregator, create_alarms, create_processor
from gateway.profiles.kinds import kind_profiles

# What the shipped kinds' profiles declare beyond the stages above (installed kinds: install_kinds).
for _profile in kind_profiles().values():
    install_stages(_profile)

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
