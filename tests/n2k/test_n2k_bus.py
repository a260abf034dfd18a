"""The N2K frontend on a real (in-process python-can virtual) bus, read back with the nmea2000
package's decoder: every mapped PGN, address claims, 126208, stale data, transport failures."""

from __future__ import annotations

import json
import logging
import math
import uuid
from pathlib import Path

import pytest

from gateway.core.store import Store
from gateway.transports.can import CandumpFile
from registers import load_default
from registers.pgn_specs import N2kField, database
from tests.n2k.decode import Decoded, decode_lines
from tests.n2k.rig import VALUES, Peer, frontend, full_store, wait_for


def channel() -> str:
    return f"gxgw-{uuid.uuid4().hex[:8]}"


def expected(f: N2kField, values: dict[str, object], instance: int) -> object:
    if f.instance:
        return instance
    if f.path is None:
        return f.constant
    v = values.get(f.path)
    if v is None:
        return None
    assert isinstance(v, (int, float))
    return f.labels[int(v)] if f.labels is not None else v * f.factor + f.offset


def close(got: object, want: object, resolution: float) -> bool:
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, abs_tol=resolution / 2 + 1e-9)
    return got == want


async def test_every_mapped_pgn_decodes_to_the_store_values() -> None:
    cmap = load_default()
    name = channel()
    peer = Peer(name)
    fe = frontend(full_store(), name)
    await fe.start()
    try:
        every = [j for node in fe.nodes.values() for j in node.jobs]
        assert len(every) == sum(len(d.pgns) for (s, _), _ in VALUES.items() for d in cmap.n2k[s])
        # A PGN whose required values the device does not publish (phases L2/L3 of the
        # one-phase PV inverter) is never sent; all others are.
        jobs = [j for j in every if j.spec.fields_of(VALUES[j.source.key].get, 0) is not None]
        silent = [j for j in every if j not in jobs]
        assert {(j.source.service, j.spec.pgn) for j in silent} == {
            ("pvinverter", p) for p in (65024, 65023, 65021, 65020)
        }

        def seen() -> dict[tuple[int, int], Decoded]:
            return {(m.src, m.pgn): m for m in peer.decoded()}

        assert await wait_for(
            lambda: all((j.device.address, j.spec.pgn) in seen() for j in jobs), timeout=8.0, step=0.5
        ), "not every mapped PGN was sent"
        got = seen()
        assert not any((j.device.address, j.spec.pgn) in got for j in silent)
        for job in jobs:
            message = got[(job.device.address or -1, job.spec.pgn)]
            values = VALUES[(job.source.service, job.source.instance)]
            info = {f.id: f for f in database().pgn_info(job.spec.pgn_id).fields}
            for f in job.spec.fields:
                want = expected(f, values, job.device.assigned.instance)
                have = message.lines[f.line - 1][f.field] if f.line else message.fields[f.field]
                assert close(have, want, info[f.field].resolution or 1.0), (
                    job.device.key,
                    job.spec.pgn,
                    f.field,
                    have,
                    want,
                )
        fast = {m.pgn for m in got.values()} & {127506, 127507, 127509, 127503, 127504}
        assert fast == {127506, 127507, 127509, 127503, 127504}  # reassembled from fast-packet frames
    finally:
        await fe.stop()
        peer.close()


async def test_claim_comes_before_data_and_names_are_distinct() -> None:
    name = channel()
    peer = Peer(name)
    fe = frontend(full_store(), name)
    await fe.start()
    try:
        assert await wait_for(lambda: any(m.pgn == 127508 for m in peer.decoded()), timeout=5.0)
        decoded = peer.decoded()
        first_claim: dict[int, float] = {}
        names: dict[int, int] = {}
        for i, m in enumerate(decoded):
            if m.pgn == 60928:
                first_claim.setdefault(m.src, i)
                names[m.src] = m.fields["uniqueNumber"]
            elif m.pgn not in (59904,):
                assert m.src in first_claim, f"PGN {m.pgn} from {m.src} before its address claim"
        assert len(set(names.values())) == len(names) == len(fe.virtual_devices())
    finally:
        await fe.stop()
        peer.close()


async def test_two_gateways_with_clashing_addresses_end_up_distinct(tmp_path: Path) -> None:
    name = channel()
    peer = Peer(name)
    stores = [Store(), Store()]
    for store in stores:
        store.add_device("battery", 512, values=VALUES[("battery", 512)])
    low = frontend(stores[0], name, tmp_path / "a", base=1024, serial="0a0000000001")
    high = frontend(stores[1], name, tmp_path / "b", base=4096, serial="0a0000000002")
    await low.start()
    await high.start()
    try:
        devices = low.virtual_devices() + high.virtual_devices()
        assert await wait_for(lambda: all(vd.address is not None for vd in devices), timeout=6.0)
        addresses = [vd.address for vd in devices]
        assert len(set(addresses)) == len(addresses), addresses
        # Both preferred 16 for their gateway device; the lower NAME (unique 1024) kept it.
        assert low.virtual_devices()[0].address == 16
        assert high.virtual_devices()[0].address != 16
        await high.stop()
        saved = json.loads((tmp_path / "b" / "n2k.json").read_text())
        assert saved["devices"]["gateway"]["address"] == high.virtual_devices()[0].address  # the move is kept
    finally:
        await low.stop()
        await high.stop()
        peer.close()


def command(pgn: int, index: int, value: int) -> bytes:
    return bytes([1, *pgn.to_bytes(3, "little"), 0xF8, 1, index, value])


async def test_126208_instance_change_survives_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    name = channel()
    peer = Peer(name)
    store = Store()
    store.add_device("battery", 512, values=VALUES[("battery", 512)])
    fe = frontend(store, name, tmp_path)
    await fe.start()
    try:
        battery = fe.nodes[("battery", 512)].devices[0]
        assert await wait_for(lambda: battery.address is not None, timeout=5.0)
        await fe.assignments.flush()  # type: ignore[union-attr]
        before = (tmp_path / "n2k.json").read_text()
        with caplog.at_level(logging.WARNING, logger="gateway.frontends.n2k.device"):
            peer.send_pgn(3, 126208, 100, battery.address or 0, bytes([1, 0x14, 0xF2, 0x01, 0xF8, 3, 1]))  # truncated
            assert await wait_for(lambda: "ignored a 126208" in caplog.text, timeout=2.0)
        await fe.assignments.flush()  # type: ignore[union-attr]
        assert (tmp_path / "n2k.json").read_text() == before  # nothing persisted
        peer.send_pgn(3, 126208, 100, battery.address or 0, command(127508, 1, 7))
        assert await wait_for(lambda: battery.assigned.instance == 7, timeout=2.0)
        assert await wait_for(lambda: any(m.pgn == 126208 and m.dst == 100 for m in peer.decoded()), timeout=1.0)
        acks = [m for m in peer.decoded() if m.pgn == 126208 and m.dst == 100]
        assert acks[0].fields["functionCode"] == "Acknowledge"  # the refusal of the truncated one
        assert acks[0].fields["pgnErrorCode"] != "Acknowledge"
        assert acks[-1].fields["functionCode"] == "Acknowledge" and acks[-1].fields["pgnErrorCode"] == "Acknowledge"
        peer.lines.clear()
        assert await wait_for(
            lambda: any(m.pgn == 127508 and m.fields["instance"] == 7 for m in peer.decoded()), timeout=3.0
        )
        names = {vd.key: (vd.assigned.unique, vd.address) for vd in fe.virtual_devices()}
    finally:
        await fe.stop()
    again = frontend(store, name, tmp_path)
    peer.lines.clear()
    await again.start()
    try:
        assert await wait_for(
            lambda: any(m.pgn == 127508 and m.fields["instance"] == 7 for m in peer.decoded()), timeout=5.0
        )
        assert all(m.fields["instance"] == 7 for m in peer.decoded() if m.pgn in (127508, 127506))
        # Unique numbers and addresses are the same as before the restart: the plotter sees the same devices.
        assert await wait_for(lambda: all(vd.address is not None for vd in again.virtual_devices()), timeout=3.0)
        assert {vd.key: (vd.assigned.unique, vd.address) for vd in again.virtual_devices()} == names
    finally:
        await again.stop()
        peer.close()


async def test_invalid_data_stops_the_pgn_within_one_interval_and_it_resumes() -> None:
    name = channel()
    peer = Peer(name)
    store = Store()
    store.add_device("battery", 512, values=VALUES[("battery", 512)])
    fe = frontend(store, name)
    await fe.start()
    try:

        def count(pgn: int) -> int:
            return sum(1 for m in peer.decoded() if m.pgn == pgn)

        assert await wait_for(lambda: count(127508) >= 1, timeout=5.0)
        store.publish("battery", 512, {"/Dc/0/Voltage": None})
        await wait_for(lambda: False, timeout=1.6)  # at most one 127508 already due goes out
        stopped_at = count(127508)
        await wait_for(lambda: False, timeout=2.0)
        assert count(127508) == stopped_at, "127508 still sent with an invalid voltage"
        assert count(127506) >= 2  # the SOC PGN goes on
        store.publish("battery", 512, {"/Dc/0/Voltage": 52.0})
        assert await wait_for(lambda: count(127508) > stopped_at, timeout=2.0)
        last = [m for m in peer.decoded() if m.pgn == 127508][-1]
        assert math.isclose(last.fields["voltage"], 52.0, abs_tol=0.006)
    finally:
        await fe.stop()
        peer.close()


async def test_unwritable_candump_path_is_one_line_and_blocks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = full_store()
    target = tmp_path / "missing" / "n2k.log"
    fe = frontend(store, "unused")
    fe.transport = CandumpFile(target)
    with caplog.at_level(logging.INFO, logger="gateway.frontends.n2k"):
        await fe.start()  # returns although the file cannot be opened
        try:
            await wait_for(lambda: False, timeout=2.0)  # two retries (0.5 s, 1 s) happen meanwhile
            store.publish("battery", 512, {"/Soc": 50.0})  # the rest goes on
        finally:
            await fe.stop()
    lines = [r for r in caplog.records if str(target) in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "unavailable" in lines[0].getMessage() and "No such file or directory" in lines[0].getMessage()
    assert fe.link is not None and not fe.link.up
    assert all(vd.address is None for vd in fe.virtual_devices())  # nobody claims without a bus


async def test_a_transport_that_comes_back_is_retried_and_the_devices_claim_then(tmp_path: Path) -> None:
    store = Store()
    store.add_device("battery", 512, values=VALUES[("battery", 512)])
    target = tmp_path / "later" / "n2k.log"
    fe = frontend(store, "unused")
    fe.transport = CandumpFile(target)
    await fe.start()
    try:
        await wait_for(lambda: False, timeout=0.7)
        target.parent.mkdir()  # the folder appears (a USB stick mounted, say): the next retry opens it
        assert await wait_for(lambda: target.exists() and "9F214" in target.read_text(), timeout=6.0, step=0.2)
        decoded = decode_lines(target.read_text().splitlines())
        first_claim = min(i for i, m in enumerate(decoded) if m.pgn == 60928)
        first_data = min(i for i, m in enumerate(decoded) if m.pgn == 127508)
        assert first_claim < first_data
    finally:
        await fe.stop()


async def test_grid_feed_in_goes_out_where_a_pgn_can_carry_it() -> None:
    """127503's real power is unsigned in canboat: feed-in (negative) is sent there as "not
    available", never as a wrong number, while J1939 65013 (offset field) carries it; the
    frontend keeps sending everything else."""
    store = full_store()
    store.publish("grid", 30, {"/Ac/L1/Power": -1309.3})
    name = channel()
    peer = Peer(name)
    fe = frontend(store, name)
    await fe.start()
    try:
        node = next(n for n in fe.nodes.values() if n.jobs and n.jobs[0].source.key == ("grid", 30))

        def got(pgn: int) -> Decoded | None:
            address = node.jobs[0].device.address  # None until its claim is done
            return next((m for m in peer.decoded() if m.src == address and m.pgn == pgn), None)

        assert await wait_for(lambda: got(127503) is not None and got(65013) is not None, timeout=8.0, step=0.2)
        ac_input = got(127503)
        j1939 = got(65013)
        assert ac_input is not None and j1939 is not None
        assert ac_input.lines[0].get("realPower") is None
        assert ac_input.lines[0]["voltage"] == pytest.approx(231.2, abs=0.1)
        assert j1939.fields["realPower"] == pytest.approx(-1309, abs=1)
        assert all(not j.failed for n in fe.nodes.values() for j in n.jobs)
    finally:
        await fe.stop()
        peer.close()
