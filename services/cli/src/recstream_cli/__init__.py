"""recstream_cli."""
