"""Report writers: one module per output (``sbom`` for ``kubegate sbom``); never imports ``cli``."""
