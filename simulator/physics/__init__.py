"""Deterministic physics of a construction site, for the simulator.

Models (each module's docstring gives the sources of its numbers):

- :mod:`~simulator.physics.weather`: temperature, humidity, pressure, mean wind
  and direction for the whole site (diurnal cycles, slow random wander).
- :mod:`~simulator.physics.wind`: one anemometer: mean, 3 s gust, direction.
- :mod:`~simulator.physics.dust`: PM10 / PM2.5 / PM1 at a boundary monitor,
  with the spray relay as an input.
- :mod:`~simulator.physics.noise`: LAeq / LAmax / LAmin over 1 s from 125 ms
  blocks at a boundary noise monitor.
- :mod:`~simulator.physics.tilt`: pitch, roll and slopes of a loaded support.

Rules every model keeps: time is an explicit argument (float seconds since
the scenario start) - no wall clock, no sleeping; randomness comes from a
:class:`random.Random` derived from the scenario seed, so a run is a pure
function of (seed, conditions, the times it is stepped at); outputs are true
physical values keyed by the register names of firmware/regmap.py in that
file's units. Sensor artefacts other than inclinometer noise (optical PM
over-reading in humid air, quantisation, faults) belong to the sensor layer.
"""

from simulator.physics.conditions import (
    CONDITION_NAMES,
    Change,
    Conditions,
    ConditionsSource,
    Timeline,
    check_condition,
    constant,
)
from simulator.physics.dust import DustModel, DustParams, optical_growth_factor
from simulator.physics.models import (
    PARAMS_BY_KIND,
    EpochSource,
    NodeModel,
    NodeParams,
    NodeSetup,
    SitePhysics,
    build_model,
    make_params,
    param_names,
)
from simulator.physics.noise import NoiseModel, NoiseParams, energy_sum, leq
from simulator.physics.randomness import stream
from simulator.physics.tilt import TiltModel, TiltParams, millidegrees, slope_permille
from simulator.physics.weather import Weather, WeatherState
from simulator.physics.wind import WindModel, WindParams

__all__ = [
    "CONDITION_NAMES",
    "PARAMS_BY_KIND",
    "Change",
    "Conditions",
    "ConditionsSource",
    "DustModel",
    "DustParams",
    "EpochSource",
    "NodeModel",
    "NodeParams",
    "NodeSetup",
    "NoiseModel",
    "NoiseParams",
    "SitePhysics",
    "TiltModel",
    "TiltParams",
    "Timeline",
    "Weather",
    "WeatherState",
    "WindModel",
    "WindParams",
    "build_model",
    "check_condition",
    "constant",
    "energy_sum",
    "leq",
    "make_params",
    "millidegrees",
    "optical_growth_factor",
    "param_names",
    "slope_permille",
    "stream",
]
