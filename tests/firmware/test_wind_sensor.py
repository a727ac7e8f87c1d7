# The wind node's adapter: anemometer pulses from the IRQ, 250 ms steps, the
# 3 s gust, the mean speed over the sample interval, the vane (potentiometer
# or resistor network) with its offset and the circular mean, and the status
# bits. Only the pin and the ADC are faked. MicroPython-compatible (no pytest).

from firmware import main, regmap, wind_sensor
from firmware.fakes import FakeIO
from firmware.node import Node

OK = regmap.STATUS_OK
FULL = 65535


def wind_node(settings=None):
    io = FakeIO()
    s = {}
    for k in settings or {}:
        s[k] = settings[k]
    sensor = wind_sensor.make_sensor(s, io)
    node = Node(regmap.KIND_WIND, sensor, 0)
    return io, sensor, node


def blow(io, node, steps, pulses_per_step, vane_raw=None):
    """steps * 250 ms of wind: the IRQ sees the pulses, the main loop ticks every 250 ms."""
    clock = io.clock()
    pin = io.pins[27]
    adc = io.adcs[34]
    for i in range(steps):
        if vane_raw is not None:
            adc.raw = vane_raw[i % len(vane_raw)]
        pin.pulse(pulses_per_step)
        clock.advance_ms(250)
        node.tick(clock.ticks_ms())


def raw_for(deg):
    return int(deg / 360.0 * FULL + 0.5)


def test_pulse_irq_is_wired_and_speed_uses_the_holding_registers():
    io, _sensor, node = wind_node()
    assert io.pins[27].handler is not None
    blow(io, node, 16, 10, [raw_for(90)])  # 4 s at 40 Hz
    node.sample(io.clock().ticks_ms())
    bank = node.bank
    assert bank.get_input("sensor_status") == OK
    assert bank.get_input("wind_speed") == 4.0  # default factor 0.1 m/s per Hz
    assert bank.get_input("wind_gust_3s") == 4.0
    assert bank.get_input("wind_dir") == 90.0
    bank.set_holding_raw("anemometer_factor", 1500)  # 0.15 m/s/Hz
    bank.set_holding_raw("anemometer_offset", 200)  # 0.2 m/s
    blow(io, node, 4, 10)
    node.sample(io.clock().ticks_ms())
    assert bank.get_input("wind_speed") == 6.2


def test_gust_is_the_highest_3_s_running_mean():
    io, _sensor, node = wind_node()
    # 2 s calm-ish, a 3 s gust at 100 Hz (10 m/s), then 5 s at 20 Hz (2 m/s).
    blow(io, node, 8, 5)
    blow(io, node, 12, 25)
    blow(io, node, 20, 5)
    node.sample(io.clock().ticks_ms())
    bank = node.bank
    assert bank.get_input("wind_gust_3s") == 10.0
    # The mean over the 10 s interval: (8 * 5 + 12 * 25 + 20 * 5) pulses in 10 s.
    assert bank.get_input("wind_speed") == 0.1 * (8 * 5 + 12 * 25 + 20 * 5) / 10.0
    # The next sample's gust only covers its own interval.
    blow(io, node, 4, 5)
    node.sample(io.clock().ticks_ms())
    assert bank.get_input("wind_gust_3s") == 2.0


def test_first_seconds_are_warm_up_and_calm_is_zero():
    io, _sensor, node = wind_node()
    blow(io, node, 4, 0, [raw_for(180)])
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("sensor_status") == regmap.STATUS_WARMUP  # not 3 s of steps yet
    blow(io, node, 12, 0)
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("sensor_status") == OK
    assert node.bank.get_input("wind_speed") == 0.0
    node.bank.set_holding_raw("anemometer_offset", 300)
    blow(io, node, 4, 0)
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("wind_speed") == 0.0  # a still cup is no wind, whatever the offset


def test_direction_is_a_circular_mean_with_the_mounting_offset():
    io, _sensor, node = wind_node()
    blow(io, node, 16, 10, [raw_for(350), raw_for(10)])
    node.sample(io.clock().ticks_ms())
    d = node.bank.get_input("wind_dir")
    assert d <= 0.2 or d >= 359.8, d  # north, not 180
    node.bank.set_holding_raw("vane_offset", 900)  # the vane's mark points east
    blow(io, node, 4, 10, [raw_for(300)])
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("wind_dir") == 30.0


def test_resistor_network_vane_and_a_broken_vane_cable():
    table = [3000, 11000, 19000, 27000, 35000, 43000, 51000, 59000]  # 8 positions from north
    io, sensor, node = wind_node({"vane_table": table, "vane_tolerance": 2000})
    blow(io, node, 16, 10, [27500])
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("sensor_status") == OK
    assert node.bank.get_input("wind_dir") == 135.0
    blow(io, node, 4, 10, [65535])  # open circuit: matches no position
    node.sample(io.clock().ticks_ms())
    vane_absent = regmap.STATUS_SPLIT | (regmap.STATUS_ABSENT << regmap.STATUS_AUX_SHIFT)
    assert node.bank.get_input("sensor_status") == OK | vane_absent  # wind_dir only: speed and gust stay valid
    assert sensor.vane_faults == 4


def test_speed_beyond_the_range_and_a_stuck_vane():
    io, _sensor, node = wind_node({"max_speed": 30, "stuck_samples": 3})
    blow(io, node, 16, 100, [raw_for(45), raw_for(46)])  # 400 Hz = 40 m/s
    node.sample(io.clock().ticks_ms())
    assert node.bank.get_input("sensor_status") == OK | regmap.STATUS_RANGE
    for _i in range(3):
        blow(io, node, 4, 20, [raw_for(200)])  # 8 m/s and a vane that never moves
        node.sample(io.clock().ticks_ms())
    stuck_vane = regmap.STATUS_SPLIT | (regmap.STATUS_STUCK << regmap.STATUS_AUX_SHIFT)
    assert node.bank.get_input("sensor_status") == OK | stuck_vane  # the vane, not the anemometer


def test_a_node_without_ticks_still_samples():
    io, _sensor, node = wind_node()
    clock = io.clock()
    io.adcs[34].raw = raw_for(270)
    for _ in range(5):
        io.pins[27].pulse(50)
        clock.advance_ms(1000)
        node.sample(clock.ticks_ms())
    assert node.bank.get_input("wind_speed") == 5.0
    assert node.bank.get_input("wind_dir") == 270.0


def test_main_loads_the_adapter_by_module_name():
    s = main.load_sensor(regmap.KIND_WIND, {"sensor": {"module": "firmware.wind", "pulse": 27}}, FakeIO())
    assert isinstance(s, wind_sensor.WindSensor)
