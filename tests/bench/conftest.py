"""tests/bench holds a benchmark (``make bench``), not tests: keep pytest out of it."""

collect_ignore_glob = ["*"]
