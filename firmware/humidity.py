# Humidity and optical PM sensors.
#
# Light-scattering PM sensors count wet, swollen particles as if they were
# dry, so they read high above about 75 % RH (in fog PM10 read +46 %,
# Jayaratne et al. 2018, AMT 11:4883). Two tools, both optional:
#
# - a flag: readings taken above a configurable RH get regmap.STATUS_HUMID,
#   so the gateway can mark or drop them;
# - a kappa-Koehler growth correction after Crilley et al. 2018 (AMT 11:709).
#   UNCONFIRMED FORM: the formula below is the project's reading of that
#   paper (domain.md section 2), not checked against the paper's text:
#       aw = RH / 100
#       C  = 1 + (kappa / 1.65) / (1 / aw - 1)
#       PM_dry = PM / C
#   with kappa ~ 0.3 by default. It is off unless the node's
#   "rh_correction" holding register is 1.

from firmware import regmap

KAPPA = 0.3
RH_FLAG = 75.0  # % RH above which a reading is flagged
# C grows without bound as RH -> 100 % (C = 19 at 99 %); above this RH the
# correction is held at its value here so a foggy reading stays finite. Such
# readings are flagged anyway, and the form is not trusted near saturation.
RH_MAX = 95.0


def growth_factor(rh, kappa=KAPPA, rh_max=RH_MAX):
    """C, the ratio of the wet to the dry reading (1 for dry air). UNCONFIRMED FORM."""
    if rh > rh_max:
        rh = rh_max
    if rh <= 0:
        return 1.0
    aw = rh / 100.0
    if aw <= 0.0:  # a humidity so small that it is 0 once divided (a subnormal float): dry air
        return 1.0
    return 1.0 + (kappa / 1.65) / (1.0 / aw - 1.0)


def correct(pm, rh, kappa=KAPPA, rh_max=RH_MAX):
    """PM corrected to dry conditions. UNCONFIRMED FORM."""
    return pm / growth_factor(rh, kappa, rh_max)


def is_humid(rh, threshold=RH_FLAG):
    return rh > threshold


def status_bits(rh, threshold=RH_FLAG):
    """regmap.STATUS_HUMID when the reading should be flagged, else 0."""
    return regmap.STATUS_HUMID if rh > threshold else 0
