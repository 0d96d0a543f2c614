"""Runs on the developer's machine: config.yaml, base images, Dockerfile, the docker CLI."""
