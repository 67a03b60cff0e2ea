"""The storage port, its Redis adapter (Lua scripts as package files) and the in-memory store."""
