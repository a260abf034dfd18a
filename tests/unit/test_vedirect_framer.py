"""The VE.Direct text framer: checksummed blocks pass, everything else is dropped and counted."""

from __future__ import annotations

from registers.vedirect import TextFramer, block_bytes, hex_command, parse_hex

MPPT = {"PID": "0xA053", "V": "12800", "I": "1500", "VPV": "36000", "PPV": "20", "CS": "3"}


def test_good_blocks_pass_and_a_bad_checksum_is_dropped_and_counted() -> None:
    f = TextFramer()
    out = f.feed(block_bytes(MPPT) + block_bytes(MPPT, corrupt=True) + block_bytes(MPPT))
    assert out == [MPPT, MPPT]
    assert f.bad_checksum == 1


def test_hex_frames_between_fields_are_taken_out_of_text_and_checksum() -> None:
    frame = hex_command(0xA, bytes([0xED, 0x8D, 0x00, 0x10, 0x05]))
    data = block_bytes(MPPT)
    cut = data.index(b"\r\nI\t")
    f = TextFramer()
    assert f.feed(block_bytes(MPPT) + data[:cut] + frame + data[cut:]) == [MPPT, MPPT]
    assert [h.command for h in f.take_hex()] == [0xA]
    assert parse_hex(b":451\n") is not None and parse_hex(b":452\n") is None


def test_garbage_and_an_endless_line_cost_a_counted_block_not_the_stream() -> None:
    f = TextFramer()
    noise = bytes(range(256)) + b"X" * 10_000
    out = f.feed(block_bytes(MPPT) + noise + block_bytes(MPPT) + block_bytes(MPPT))
    assert out[0] == MPPT and out[-1] == MPPT
    assert f.bad_checksum + f.garbage >= 1
