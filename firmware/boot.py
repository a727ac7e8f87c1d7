# Runs before main.py on every start, a watchdog reset included.
#
# Its one job: drive the spray relay's pin to the off level at once. After a
# reset the pin is an input and the relay board's own pull decides; main.py
# takes a second or more (imports, flash) before firmware.relay drives it.
# Any failure here is printed and ignored: main.py does the same again.

try:
    import json

    import machine

    f = open("node.json")
    try:
        _relay = json.loads(f.read()).get("relay")
    finally:
        f.close()
    if _relay:
        machine.Pin(_relay["pin"], machine.Pin.OUT, value=1 if _relay.get("active_low") else 0)
except Exception as e:
    print("boot.py: relay not preset:", repr(e))
