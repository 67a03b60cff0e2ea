"""recstream_consumer: the stream consumer that folds interaction events into Redis.

Run it with ``recstream-consumer`` or ``python -m recstream_consumer``; see
:mod:`recstream_consumer.settings` for its configuration.
"""
