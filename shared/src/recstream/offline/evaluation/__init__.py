"""Offline evaluation: protocols, metrics and reference baselines over the same core.

Pure modules: the state is built and read through the store ports
(:class:`~recstream.store.port.StateStore`, :class:`~recstream.readmodel.load.StatsReader`),
so the in-memory store and Redis are evaluated by the same code.
"""
