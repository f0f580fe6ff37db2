"""The decide stage: from findings and what was not seen to a verdict (DESIGN.md section 1).

``policy`` (severity threshold, fixable/unfixable, allowed registries, DB age), ``ignorefile``
(kubegate's exceptions with scope and expiry) and ``trivyignore`` (Trivy's ignore files), ``vex``
(OpenVEX statements), and ``gate`` (the verdict and its reasons, used by ``kubegate.scan``).
"""
