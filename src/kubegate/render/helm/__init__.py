"""HelmReleases rendered as helm-controller renders them, through the real helm.

Modules: ``release`` (a HelmRelease's spec), ``strvals`` and ``values`` (Helm's ``--set``
parser, values composition, ``valuesFiles`` merge, release names), ``chart`` (private chart
copies, safe archive extraction, ``Chart.yaml``), ``runner`` (the isolated ``helm template``),
``locator`` (provenance of chart-rendered objects) and ``stage`` (:func:`render_releases`, called
per cluster by ``kubegate.render.fleet``).
"""
