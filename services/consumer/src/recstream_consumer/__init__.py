"""recstream_consumer."""
