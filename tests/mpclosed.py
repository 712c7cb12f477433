"""Closed forms of the LIF neuron in high precision (mpmath), shared by the tests."""

import mpmath as mp

DPS = 60


def peak_mp(V0, I0, tm, ts):
    """Zero of dV/dt on (0, inf), or None.

    tau_mem == tau_syn: V = (V0 + I0 t/tau) e^{-t/tau}, dV/dt = 0 at t = tau (I0 - V0)/I0.
    Otherwise V = a e^{-t/tm} + b e^{-t/ts} with c = I0 ts/(tm - ts), a = V0 + c, b = -c, and
    dV/dt = 0  <=>  e^{t g} = c tm/(a ts),  g = 1/ts - 1/tm.
    """
    with mp.workdps(DPS):
        V0, I0, tm, ts = (mp.mpf(float(x)) for x in (V0, I0, tm, ts))
        if tm == ts:
            if I0 == 0:
                return None
            t = tm * (I0 - V0) / I0
        else:
            c = I0 * ts / (tm - ts)
            a = V0 + c
            if a == 0:
                return None
            r = c * tm / (a * ts)
            if r <= 0:
                return None
            t = mp.log(r) / (1 / ts - 1 / tm)
        return t if t > 0 else None
