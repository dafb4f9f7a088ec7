"""Errors of the masking rules and of values a rule cannot mask.

Neither message ever contains a cell value or the masking key: both may be personal data or
secrets, and error messages end up in logs.
"""

from __future__ import annotations

from datasafe.errors import ConfigError


class RulesError(ConfigError):
    """The masking rules are invalid, or do not fit the snapshot they are applied to.

    Messages name the file, line and key when they come from a rules file, e.g.
    ``rules.yml:12: tables.public.customers.columns.email: unknown transformer 'emial'``.
    """


class UnmaskableValue(RulesError):
    """A value does not have the shape the column's rule needs (e.g. ``noise`` on ``'abc'``).

    The message names the column and the rule, never the value.
    """
