"""Training the learned ranker from the event log (``recstream train``)."""
