"""Wind at one anemometer: mean speed, 3 s gusts and direction.

The mean wind and its slowly meandering direction come from the site's
:class:`~simulator.physics.weather.Weather` (10 m reference height). Each
anemometer adds its own turbulence, simulated on a fixed 0.25 s grid: WMO
recommends 4 Hz sampling for the 3 s running mean that defines a gust (WMO-No.
8, CIMO Guide, Part I ch. 5; gust = highest 3 s running mean, WMO-No. 306).

Model (approximate, honest about it):

- Height: mean speed scales with the logarithmic profile
  U(z) = U(10) ln(z/z0) / ln(10/z0); turbulence intensity scales as
  1/ln(z/z0) (EN 1991-1-4, 4.3.2 and 4.4). A crane-top anemometer at 50 m sees
  more wind and relatively less turbulence than a mast at 10 m.
- Longitudinal turbulence u' is an Ornstein-Uhlenbeck process with standard
  deviation sigma_u = I_u U and time scale T = L / U, where the integral length
  scale L = 300 (z/200)^(0.67 + 0.05 ln z0) metres (EN 1991-1-4, Annex B.1):
  about 50 m at 10 m height. A real spectrum (von Karman, Kaimal) has more
  energy at seconds than a first-order process, so gusts are slightly tame in
  light wind; in strong wind (T of a few seconds) the 3 s gust to 10 min mean
  ratio comes out near 1.4-1.5 for I_u ~ 0.22, inside the range the WMO
  tropical-cyclone guidelines give for land exposures (Harper, Kepert & Ginger
  2010, WMO/TD-No. 1555: roughly 1.2-1.3 over the sea, 1.4-1.7 over land; the
  classic Durst (1960) open-country value for a 2-3 s gust is about 1.4-1.5).
- Lateral turbulence v' has sigma_v = 0.75 sigma_u (a common ratio near the
  ground, e.g. ESDU 85020) and a shorter time scale (T/3). The instantaneous
  speed is |(U + u', v')| (what a cup or ultrasonic sensor measures) and the
  direction turns by atan2(v', U + u').

Each step reports, for the grid points in (t - dt, t]: the scalar mean speed,
the unit-vector mean direction (circular; never an arithmetic mean of
degrees), and the highest 3 s running mean of speed (the gust). When dt is a
multiple of 3 s the gust can never be below the mean.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.physics.weather import Weather

GRID = 0.25  # s: 4 Hz, WMO's sampling for gusts
GUST_WINDOW = 3.0  # s
GUST_POINTS = round(GUST_WINDOW / GRID)
WEATHER_EVERY = 8  # grid points between weather look-ups (2 s; the weather moves over minutes)
SPIN_UP = 600.0  # s of turbulence simulated before the first sample at most
LATERAL_RATIO = 0.75


@dataclass(frozen=True, slots=True)
class WindParams:
    height: float = 10.0  # m above ground of the anemometer
    roughness: float = 0.3  # m, z0 of the surroundings (EN 1991-1-4 terrain category III)

    def __post_init__(self) -> None:
        if not 1.0 <= self.height <= 500.0:
            raise ValueError(f"height: {self.height:g} m is outside 1 .. 500 m")
        if not 0.001 <= self.roughness <= 2.0:
            raise ValueError(f"roughness: {self.roughness:g} m is outside 0.001 .. 2 m")
        if self.height <= 2 * self.roughness:
            raise ValueError("height: must be well above the roughness length")


def wrap_degrees(angle: float) -> float:
    """The angle in [0, 360)."""
    wrapped = angle % 360.0
    return 0.0 if wrapped >= 360.0 else wrapped


def length_scale(height: float, roughness: float) -> float:
    """Integral length scale of longitudinal turbulence, m (EN 1991-1-4 Annex B.1)."""
    z = max(height, 1.0)
    alpha = 0.67 + 0.05 * math.log(roughness)
    return 300.0 * math.pow(z / 200.0, alpha)


class WindModel:
    kind = "wind"

    def __init__(self, weather: Weather, rng: random.Random, params: WindParams | None = None) -> None:
        self.weather = weather
        self.rng = rng
        self.params = params if params is not None else WindParams()
        p = self.params
        self.speed_ratio = math.log(p.height / p.roughness) / math.log(10.0 / p.roughness)
        self.intensity_ratio = 1.0 / self.speed_ratio
        self.length = length_scale(p.height, p.roughness)
        self.zu = rng.gauss(0.0, 1.0)
        self.zv = rng.gauss(0.0, 1.0)
        self.next_index: int | None = None  # next grid index to simulate
        self.recent: deque[float] = deque(maxlen=GUST_POINTS)
        self.recent_sum = 0.0
        # (time, speed, 3 s running mean, sin(dir), cos(dir)) of recent grid points
        self.points: deque[tuple[float, float, float, float, float]] = deque(maxlen=4 * 60 * 10)
        self.last: dict[str, float] = {"wind_speed": 0.0, "wind_dir": 0.0, "wind_gust_3s": 0.0}

    def _simulate_to(self, index_end: int) -> None:
        """Simulate grid points up to and including index_end."""
        assert self.next_index is not None
        gauss = self.rng.gauss
        recent = self.recent
        points = self.points
        i = self.next_index
        a_u = b_u = a_v = b_v = 0.0
        mean = sigma_u = sigma_v = direction = 0.0
        countdown = 0
        while i <= index_end:
            t = i * GRID
            if countdown == 0:
                w = self.weather.at(t)
                mean = w.wind_mean * self.speed_ratio
                sigma_u = w.turbulence * self.intensity_ratio * mean
                sigma_v = LATERAL_RATIO * sigma_u
                direction = math.radians(w.wind_dir)
                timescale = min(120.0, max(0.5, self.length / max(mean, 0.5)))
                a_u = math.exp(-GRID / timescale)
                b_u = math.sqrt(1.0 - a_u * a_u)
                a_v = math.exp(-3.0 * GRID / timescale)
                b_v = math.sqrt(1.0 - a_v * a_v)
                countdown = WEATHER_EVERY
            countdown -= 1
            self.zu = a_u * self.zu + b_u * gauss(0.0, 1.0)
            self.zv = a_v * self.zv + b_v * gauss(0.0, 1.0)
            along = mean + sigma_u * self.zu
            across = sigma_v * self.zv
            speed = math.hypot(along, across)
            heading = direction + math.atan2(across, along)
            if len(recent) == GUST_POINTS:
                self.recent_sum -= recent[0]
            recent.append(speed)
            self.recent_sum += speed
            running = self.recent_sum / len(recent)
            points.append((t, speed, running, math.sin(heading), math.cos(heading)))
            i += 1
        self.next_index = i

    def step(self, t: float, dt: float, actuators: Mapping[str, bool] | None = None) -> dict[str, float]:
        """Advance to time t; values for the interval (t - dt, t]."""
        end = math.floor(t / GRID + 1e-9)
        window = max(dt, 0.0)
        needed = math.ceil(window / GRID) + 2
        if needed > (self.points.maxlen or 0):
            self.points = deque(self.points, maxlen=needed)
        if self.next_index is None:
            # First call: start far enough back to fill the window and the 3 s mean.
            self.next_index = math.floor((t - min(window, SPIN_UP) - GUST_WINDOW) / GRID)
        if end >= self.next_index:
            self._simulate_to(end)
        start = t - window
        total = gust = north = east = 0.0
        count = 0
        for when, speed, running, sin_dir, cos_dir in reversed(self.points):
            if when > t + 1e-9:
                continue
            if when <= start + 1e-9:
                break
            total += speed
            east += sin_dir
            north += cos_dir
            gust = max(gust, running)
            count += 1
        if count:
            self.last = {
                "wind_speed": total / count,
                "wind_dir": wrap_degrees(math.degrees(math.atan2(east, north))),
                "wind_gust_3s": gust,
            }
        return dict(self.last)
