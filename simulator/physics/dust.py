"""Particulate matter (PM10, PM2.5, PM1) at one boundary dust monitor.

Concentration = urban background + the site's own contribution. The shapes
follow the US EPA's fugitive dust emission factors (AP-42, Fifth Edition,
chapter 13.2); the absolute scale is tuned so that an ordinary working day
adds a few tens of ug/m3 at the boundary and dry, windy earthworks push PM10
well past 150 ug/m3. These are plausible numbers, not a dispersion model.

Site emission, three sources:

- Earth handling (digging, loading, dumping), AP-42 13.2.4 drop equation:
  E ~ (U / 2.2)^1.3 / (M / 2)^1.4, U wind speed (m/s), M surface moisture (%).
  More wind lifts more dust from every bucket; wet soil much less.
- Haul roads (trucks), AP-42 13.2.2: proportional to truck movements; watering
  is the usual control (AP-42 and the WRAP Fugitive Dust Handbook, 2006,
  quote roughly 50-75 % PM10 control for regular watering); here the
  moisture term is the square root of the handling one (an assumption).
- Wind erosion of bare soil, AP-42 13.2.5: only above a threshold friction
  velocity u*t, growing as 58 (u* - u*t)^2 + 25 (u* - u*t). Here the friction
  velocity comes from the log law, u* = 0.4 U / ln(10 m / z0) with z0 = 0.3 m
  (AP-42 itself works from the fastest mile), and u*t = 0.45 m/s is assumed
  for loose, freshly disturbed soil (the materials AP-42 tabulates range from
  about 0.5 to 1.3 m/s), so erosion starts near U = 4 m/s and dominates in a
  gale.

Natural surface moisture M relaxes towards a target set by the air's
humidity (about 1.6 % in dry air, 3.8 % at 95 % RH; kept above 1.5 % because
the AP-42 moisture term is fitted for 0.25-4.8 % and grows fast in dust-dry soil) or by rain (6-12 %), over
half an hour to an hour and a half (faster in dry, windy air).

The spray / fog cannon (the dust node's spray relay) wets the site: the wetted
share rises with a 5 min time constant while it runs and dries off over about
an hour after it stops; a fully wetted site emits 65 % less (within the 50-75 %
PM10 control quoted for regular watering by the WRAP Fugitive Dust Handbook,
2006). While the spray runs its droplets also scavenge about 30 % of the
airborne dust, so PM10 at the boundary falls within minutes of switching on.

Transport: the site's contribution at the monitor is emission diluted by the
wind, C ~ Q / U (as in a Gaussian plume at a fixed distance), larger at night
in light wind (stable air, Pasquill classes E-F), and scaled by where the
monitor lies relative to the site (`bearing`): a monitor downwind gets the
plume, one upwind little of it. While the spray runs, droplets also scavenge
about 30 % of the airborne dust. The monitor follows the equilibrium with a
time constant of a couple of minutes (transport over the site), and the plume
flickers (lognormal, sigma 0.3, 1 min memory).

Size fractions: fugitive dust is coarse: PM2.5/PM10 about 0.1-0.15 (AP-42
particle size multipliers: unpaved roads 0.15/1.5, aggregate handling
0.053/0.35); PM1/PM10 about 0.04 (assumed). Urban background is fine:
PM2.5/PM10 about 0.55-0.6 in Pearl River Delta cities, PM1 about 0.75 of
PM2.5. Background is highest at night and in the morning (shallow mixing
layer), lowest in the afternoon, washed out by rain, swept away by strong
wind.

The values are true mass concentrations. Optical sensors read high in humid
air; :func:`optical_growth_factor` gives the (kappa-Koehler) factor a
simulated optical sensor can apply, as the firmware's correction undoes it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.physics.conditions import ConditionsSource
from simulator.physics.randomness import OrnsteinUhlenbeck, relax
from simulator.physics.weather import Weather

MAX_SUBSTEP = 10.0  # s

# Emission scales (arbitrary units; only their ratios and SCALE matter).
HANDLING = 60.0  # per unit of earthworks
ROAD = 4.0  # per truck movement per hour
EROSION = 600.0  # per unit of exposed soil, at u* = 1 m/s
SCALE = 2.5  # ug/m3 at the boundary per (emission unit / (m/s))

FRICTION_RATIO = 0.4 / math.log(10.0 / 0.3)  # u* / U(10 m), von Karman 0.4, z0 0.3 m
THRESHOLD_FRICTION = 0.45  # m/s, loose disturbed soil (assumed; AP-42 13.2.5 tables: ~0.5-1.3)
SPRAY_CONTROL = 0.65  # emission control of a fully wetted site (WRAP handbook: ~50-75 %)
WETTING_TIME = 300.0  # s
DRYING_TIME = 5400.0  # s, scaled down in dry, windy air
SCAVENGED = 0.3  # share of airborne site dust removed while the spray runs
TRANSPORT_TIME = 120.0  # s

COARSE_PM25 = 0.12  # PM2.5 / PM10 of fugitive dust
COARSE_PM1 = 0.04  # PM1 / PM10 of fugitive dust
FINE_PM1 = 0.75  # PM1 / PM2.5 of urban background


@dataclass(frozen=True, slots=True)
class DustParams:
    # Direction from the centre of the works to the monitor, degrees from north;
    # negative: unknown, the monitor always gets the average share.
    bearing: float = -1.0
    exposure: float = 1.0  # multiplies the site's contribution (near the gate: > 1)

    def __post_init__(self) -> None:
        if self.bearing != -1.0 and not 0.0 <= self.bearing < 360.0:
            raise ValueError(f"bearing: {self.bearing:g} is not a direction in 0 .. 360 (or -1 for none)")
        if not 0.0 <= self.exposure <= 20.0:
            raise ValueError(f"exposure: {self.exposure:g} is outside 0 .. 20")


def erosion_potential(friction_velocity: float, threshold: float = THRESHOLD_FRICTION) -> float:
    """AP-42 13.2.5 erosion potential (g/m2 per disturbance) for one fastest-wind period."""
    excess = friction_velocity - threshold
    if excess <= 0:
        return 0.0
    return 58.0 * excess * excess + 25.0 * excess


EROSION_REFERENCE = erosion_potential(1.0)


def optical_growth_factor(humidity: float, kappa: float = 0.3) -> float:
    """How much an optical PM sensor over-reads because particles take up water.

    kappa-Koehler form quoted in the project's domain notes (after Crilley et al.
    2018, AMT 11:709): C = 1 + (kappa / 1.65) / (1 / aw - 1), aw = RH / 100.
    The exact form is unconfirmed; capped at RH 99 % to stay finite.
    """
    aw = min(max(humidity, 0.0), 99.0) / 100.0
    if aw <= 0:
        return 1.0
    return 1.0 + (kappa / 1.65) / (1.0 / aw - 1.0)


def air_moisture(humidity: float) -> float:
    """Surface moisture (%) of bare soil in equilibrium with the air alone."""
    return 1.5 + 2.5 * (humidity / 100.0) ** 2


class DustModel:
    kind = "dust"

    def __init__(
        self,
        weather: Weather,
        conditions: ConditionsSource,
        rng: random.Random,
        params: DustParams | None = None,
    ) -> None:
        self.weather = weather
        self.conditions = conditions
        self.params = params if params is not None else DustParams()
        self.plume = OrnsteinUhlenbeck(rng, 60.0)
        self.drift = OrnsteinUhlenbeck(rng, 3600.0)
        self.moisture: float | None = None  # %, natural surface moisture (air, rain)
        self.wetted = 0.0  # 0..1, how far the spray has wetted the site
        self.site_pm10: float | None = None  # ug/m3, the site's contribution
        self.time: float | None = None

    def _geometry(self, wind_dir: float) -> float:
        bearing = self.params.bearing
        if bearing < 0:
            return 0.5
        # The wind blows towards wind_dir + 180.
        alignment = math.cos(math.radians(wind_dir + 180.0 - bearing))
        return 0.15 + 0.85 * max(0.0, alignment) ** 2

    def _equilibrium(self, t: float, spray: bool) -> tuple[float, float, float]:
        """(target surface moisture, its time constant, equilibrium site PM10) at t."""
        w = self.weather.at(t)
        c = self.conditions(t)
        wind = w.wind_mean
        target = air_moisture(w.humidity)
        timescale = DRYING_TIME * (0.4 + 0.6 * w.humidity / 100.0) / (1.0 + 0.1 * wind)
        if w.rain > 0:
            target = max(target, 6.0 + min(6.0, w.rain))
        moisture = self.moisture if self.moisture is not None else target
        if target > moisture:
            timescale = WETTING_TIME
        dryness = (2.0 / max(moisture, 0.5)) ** 1.4
        active = c.activity
        handling = HANDLING * active * c.earthworks * (max(wind, 0.5) / 2.2) ** 1.3 * dryness
        road = ROAD * active * c.trucks * math.sqrt(dryness)
        erosion = EROSION * c.exposed_soil * erosion_potential(FRICTION_RATIO * wind) / EROSION_REFERENCE * dryness
        stable = 1.0 + 0.8 * (1.0 - w.sun) * math.exp(-wind / 3.0)
        site = SCALE * (handling + road + erosion) / max(wind, 0.7) * stable
        site *= self._geometry(w.wind_dir) * self.params.exposure
        site *= 1.0 - SPRAY_CONTROL * self.wetted
        if spray:
            site *= 1.0 - SCAVENGED
        return target, timescale, site

    def _advance(self, t: float, spray: bool) -> None:
        if self.time is None:
            target, _, site = self._equilibrium(t, spray)
            self.moisture = target
            self.site_pm10 = site
            self.time = t
            return
        while self.time < t:
            h = min(MAX_SUBSTEP, t - self.time)
            end = self.time + h
            if spray:
                self.wetted = relax(self.wetted, 1.0, h, WETTING_TIME)
            else:
                humidity = self.weather.at(end).humidity
                self.wetted = relax(self.wetted, 0.0, h, DRYING_TIME * (0.4 + 0.6 * humidity / 100.0))
            target, timescale, site = self._equilibrium(end, spray)
            assert self.moisture is not None and self.site_pm10 is not None
            self.moisture = relax(self.moisture, target, h, timescale)
            self.site_pm10 = relax(self.site_pm10, site, h, TRANSPORT_TIME)
            self.plume.advance(h)
            self.drift.advance(h)
            self.time = end

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]:
        """Advance to time t (the spray state applies over the whole step)."""
        spray = bool(actuators.get("spray_relay", False)) if actuators else False
        self._advance(t, spray)
        w = self.weather.at(t)
        c = self.conditions(t)
        assert self.site_pm10 is not None
        site = self.site_pm10 * math.exp(0.3 * self.plume.value - 0.045)
        # Background: deepest mixing layer mid-afternoon, shallowest before dawn.
        daily = 1.0 + 0.25 * math.cos(2.0 * math.pi * (w.local_hour - 4.0) / 24.0)
        washout = 1.0 - 0.4 * min(1.0, w.rain / 5.0)
        ventilation = 1.0 / (1.0 + 0.03 * max(0.0, w.wind_mean - 3.0))
        background = daily * washout * ventilation * math.exp(0.15 * self.drift.value)
        pm10_bg = c.background_pm10 * background
        pm25_bg = min(c.background_pm25, c.background_pm10) * background
        return {
            "pm25": pm25_bg + COARSE_PM25 * site,
            "pm10": pm10_bg + site,
            "pm1": FINE_PM1 * pm25_bg + COARSE_PM1 * site,
            "temperature": w.temperature,
            "humidity": w.humidity,
            "pressure": w.pressure,
        }
