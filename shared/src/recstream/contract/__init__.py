"""The contracts others depend on: the event and catalog records, item keys, the Redis keyspace."""
