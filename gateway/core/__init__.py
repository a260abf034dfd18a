"""The core every other room stands on: the Store (the one live model), the one write gate
(with the writer's identity, audit and the setpoint watchdog), settings and their persistence,
the gateway's identity, the system overview's derivations, config keys, the component
lifecycle and rate-limited logging. Nothing here imports a frontend, a source or a transport.
"""
