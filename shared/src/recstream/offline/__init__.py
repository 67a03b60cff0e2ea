"""Offline work over files: dataset readers and the evaluation."""
