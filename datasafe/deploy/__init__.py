"""Deployments of a fleet of sources, rendered from ``datasafe.yml`` (docs/scaling.md).

- ``kubernetes``: the manifests of a fleet on Kubernetes (a CronJob per source, a verify
  CronJob, the ConfigMap, a ResourceQuota), referring to Secrets, never holding their values
"""
