"""KServe deployment: read model folders (:mod:`.target`), render manifests (:mod:`.manifest`)."""
