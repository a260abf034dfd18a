"""The process test_lazy_imports starts: ``gx-gateway run --config FILE`` (the real command
line), which, once the gateway is ready, prints the names of the loaded modules as one JSON
line and stops the gateway with SIGTERM, as a service manager does."""

from __future__ import annotations

import json
import os
import signal
import sys

from gateway import app
from gateway.cli import main as cli
from gateway.cli import run


def main(config: str) -> int:
    announce = run._run_ready

    def ready(gateway: app.Gateway) -> None:
        announce(gateway)
        print(json.dumps(sorted(sys.modules)), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    run._run_ready = ready  # the hook `run` calls once every component started
    return cli.main(["run", "--config", config])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
