"""Control: rules that read the Store and write through the one write gate, as a GX's ESS loop,
feed-in limiter, generator start/stop and relay functions do. ``rule.py`` (what a rule
declares: name, period, inputs, outputs; a pure ``step``), ``runner.py`` (the component that
runs the rules at their periods on an injectable clock) and one module per rule. A rule
writes as ``control:<name>``, so the audit log, metrics and watchdog tell it from a client.
No frontend knows about the rules; a rule knows no frontend, source or transport.
"""
