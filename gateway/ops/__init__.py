"""Operations: logging, health, metrics, and the ``status`` and ``export`` commands.

Nothing here is on a data path: these modules read the running gateway (the Store, the
compiled map, the frontends' plain-integer counters) when asked, by a scrape or a command.
"""
