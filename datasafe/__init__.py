"""datasafe: verified, compressed database snapshots and anonymized copies.

Packages, top layer first (docs/architecture.md; ``lint-imports`` keeps imports going down):
``cli`` (the command line), ``commands`` (one function per operation), ``report``, ``deploy``
(Kubernetes manifests), ``environments``, ``ops`` (nightly jobs), ``diff``, ``masking``,
``transfer`` (backup, restore and verify mechanisms), ``scan`` (PII discovery), then the modules
``config`` and ``demo``, the packages ``engines``, ``snapshot`` and ``storage``, and the leaf
modules ``audit``, ``policykey``, ``retention_policy``, ``notify_urls``, ``identity``, ``urls``,
``yamlsafe``, ``durable``, ``faultpoints``, ``processes``, ``progress``, ``clock``, ``humanize``,
``redact``, ``engine_names``, ``units`` and ``errors``.
"""

from __future__ import annotations

__version__ = "0.1.0"
