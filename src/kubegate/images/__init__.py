"""The images stage: image references and where a revision runs them (DESIGN.md section 1).

``reference`` parses and normalises references with the Docker grammar (also used by the
registry client and the config); ``find`` walks rendered objects to image uses with their
provenance (called by ``kubegate.scan`` and ``kubegate.cli.images``).
"""
