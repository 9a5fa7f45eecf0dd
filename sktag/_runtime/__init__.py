"""The runtime layer: devices and dtypes, threads, parameter checks, progress and warnings, RDKit, content digests
of tensors, and objects pickled by earlier versions.  Imports nothing from the layers above it."""
