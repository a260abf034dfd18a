"""``gx-gateway scan --serial``, the Modbus RTU half: which meters answer on an RS485 bus.

A port that sends no VE.Direct text may be a bus of meters, which stay silent until asked.
It is asked with the meter probe tables of mappings/devices (``identify``, as the network
scan does), unit by unit, at the line settings meters ship with; the first setting at which
any unit answers is the bus's (a bus has one), and the rest are not tried. Each question
waits briefly (``TIMEOUT_S``), so a silent port costs about settings x units x that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.sources.meter import UnsupportedDevice, identify
from gateway.sources.poller import ProbeFailed
from gateway.transports.rtu import CrcError, RtuLink
from gateway.transports.serial import SerialSettings
from gateway.transports.tcp import LinkDown, ModbusError
from registers.meters import MeterModel

SETTINGS: Final = (  # meters' factory settings first: EM24/EM540/ET340/SDM630 9600 8N1; ABB 19200 8E1
    SerialSettings(baud=9600),
    SerialSettings(baud=19200, parity="even"),
    SerialSettings(baud=19200),
    SerialSettings(baud=9600, parity="even"),
)
UNITS: Final = (1, 2, 3, 4)
TIMEOUT_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class RtuMeter:
    unit: int
    settings: SerialSettings
    model: MeterModel | None  # None: it answers, but no probe says which model (set ``model``)
    note: str


def describe(s: SerialSettings) -> str:
    return f"{s.baud} {s.bytesize}{s.parity[0].upper()}{s.stopbits}"


async def probe_bus(
    path: str,
    models: Mapping[str, MeterModel],
    settings: Sequence[SerialSettings] = SETTINGS,
    units: Sequence[int] = UNITS,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[list[RtuMeter], str]:
    """The meters that answer on ``path`` and a one-line note (why none, when none)."""
    note = "no Modbus RTU answer"
    unprobed = ", ".join(sorted(name for name, m in models.items() if m.probe is None))
    hint = f" (a meter without a model id, {unprobed}? write its table with model set)" if unprobed else ""
    for s in settings:
        progress(f"{path}: Modbus RTU at {describe(s)}, units {units[0]}-{units[-1]} ...")
        link = RtuLink(path, s, timeout_s=TIMEOUT_S)
        found: list[RtuMeter] = []
        noise = 0
        try:
            for unit in units:
                try:
                    model = await identify(link, unit, models, TIMEOUT_S)
                except UnsupportedDevice as e:
                    found.append(RtuMeter(unit, s, None, f"unsupported: {e}{hint}"))
                except ProbeFailed:
                    found.append(RtuMeter(unit, s, None, f"unit {unit} answers, but no probe names its model{hint}"))
                except CrcError:
                    noise += 1  # something answers, at another speed or parity
                except LinkDown as e:
                    return [], str(e)
                except ModbusError:
                    continue  # silent at this unit
                else:
                    found.append(RtuMeter(unit, s, model, model.product))
        finally:
            await link.close()
        if found:
            return found, f"{len(found)} Modbus RTU unit(s) at {describe(s)}"
        if noise:
            note = f"answers failing their CRC at {describe(s)} (another speed or parity? noise?)"
    return [], f"{note} (tried {', '.join(describe(s) for s in settings)}; units {', '.join(map(str, units))})"


def render_bus(path: str, meters: Sequence[RtuMeter], first_instance: int) -> tuple[list[str], int]:
    """``[[device]]`` tables for the meters of one bus; the next free instance."""
    out: list[str] = []
    instance = first_instance
    for m in meters:
        s = m.settings
        if m.model is None:
            out.append(f"# {path} unit {m.unit}: {m.note}\n")
            continue
        role = "grid" if instance == first_instance else "acload"
        out.append(
            f"# {m.model.product} on {path} unit {m.unit}\n"
            f'[[device]]\ndriver = "meter"\ntransport = "rtu"\nport = "{path}"\n'
            f'baud = {s.baud}\nparity = "{s.parity}"\nunit = {m.unit}\ninstance = {instance}\n'
            f'model = "{m.model.name}"\nrole = "{role}"  # grid | pvinverter | genset | acload | evcharger\n'
        )
        instance += 1
    return out, instance
