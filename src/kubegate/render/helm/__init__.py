"""HelmReleases rendered as helm-controller renders them, through the real helm.

Modules: ``release`` (a HelmRelease's spec), ``strvals`` (Helm's ``--set`` parser) and
``values`` (values composition, ``valuesFiles`` merge and release names, as helm-controller and
source-controller do before ``helm template``), ``chart`` (private chart copies, safe archive
extraction, ``Chart.yaml``), ``runner`` (the isolated ``helm template``), ``locator``
(provenance of chart-rendered objects) and ``stage`` (:func:`render_releases`, called per
cluster by ``kubegate.render.fleet``).
"""
