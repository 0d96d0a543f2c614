"""Runs inside the model container: the KServe model, its routes, streaming and files."""
