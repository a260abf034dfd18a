"""One `gx-gateway demo` child process shared by the operations tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo_process import DemoProcess


@pytest.fixture(scope="package")
def demo() -> Iterator[DemoProcess]:
    d = DemoProcess()
    yield d
    d.stop()
