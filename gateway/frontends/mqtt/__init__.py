"""MQTT: the Venus OS topics (``N/<portal id>/<service>/<instance>/<path>``, keep-alive, ``R/``
reads and ``W/`` writes through the one write gate), to a broker or an embedded one."""
