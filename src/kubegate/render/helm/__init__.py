"""HelmRelease rendering: what helm-controller and source-controller do before ``helm template``.

``strvals`` is Helm's ``--set`` parser, ``values`` composes a HelmRelease's values and release
name as helm-controller does.
"""
