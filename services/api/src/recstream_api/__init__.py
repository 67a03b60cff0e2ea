"""recstream_api."""
