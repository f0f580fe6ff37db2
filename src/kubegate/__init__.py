"""kubegate: stop vulnerable container images before Flux applies them.

The pipeline (DESIGN.md section 1) flows one way: source -> render -> images -> registry ->
inventory -> match -> policy -> report. ``kubegate.cli`` is the only entry point that wires it to a
terminal; ``kubegate.scan`` (later) is the one pipeline shared with the in-cluster controller.
"""

__version__ = "0.1.0"
