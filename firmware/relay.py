# The spray / fog-cannon relay of a dust node, driven by the coil "spray_relay".
#
# Safety rules:
#   - the relay is off whenever the firmware (re)starts, a watchdog reset
#     included: the constructor drives the pin to the off level before anything
#     else can happen, and boot.py does the same even earlier;
#   - "on" is a lease of max_on_ms: it never stays on longer than that after
#     the gateway's last "on", so a gateway that died (or lost the bus) cannot
#     run the pump dry or flood the site. Each write of "on" renews the lease:
#     the gateway rewrites the coil well within max_on_ms while it wants the
#     spray on (spray.refresh_s), and reads it back, so a long dust episode is
#     not cut off after max_on_ms while the gateway believes it sprays.
#
# Many relay boards are active-low (the coil is energised at logic 0):
# active_low says so, and "off" is then the high level.

from firmware import clock

DEFAULT_MAX_ON_MS = 60 * 60 * 1000


class Relay:
    def __init__(self, pin, max_on_ms=DEFAULT_MAX_ON_MS, active_low=False, ticks_diff=None):
        if max_on_ms <= 0:
            raise ValueError("max_on_ms must be positive")
        self.pin = pin
        self.max_on_ms = max_on_ms
        self.active_low = active_low
        self.ticks_diff = ticks_diff if ticks_diff is not None else clock.ticks_diff
        self.on = False
        self.since_ms = 0
        self.switches = 0
        self.auto_offs = 0
        self._drive(False)

    def off_level(self):
        return 1 if self.active_low else 0

    def _drive(self, on):
        level = 0 if on else 1
        if not self.active_low:
            level = 1 - level
        self.pin.value(level)

    def set(self, on, now_ms):
        on = bool(on)
        if on:
            self.since_ms = now_ms  # a new lease, or the current one renewed
            if not self.on:
                self.switches += 1
        self.on = on
        self._drive(on)

    def on_for_ms(self, now_ms):
        """How long since the relay was switched or renewed on (0 when off)."""
        if not self.on:
            return 0
        return self.ticks_diff(now_ms, self.since_ms)

    def poll(self, now_ms):
        """Enforce the maximum on-time. True if the relay switched itself off just now."""
        if self.on and self.ticks_diff(now_ms, self.since_ms) >= self.max_on_ms:
            self.set(False, now_ms)
            self.auto_offs += 1
            return True
        return False
