"""Code in a snapshot runs with its owner's rights, never with more.

Refreshing a materialized view runs its query, and with it every function, view, operator and
domain check it reaches. PostgreSQL runs the refresh as the view's owner, so what matters is who
that owner is on the target:

- With ``--no-owner`` every object belongs to the restoring role, usually a superuser: code that
  any role wrote into the snapshot would run with the restoring role's rights. Such views are
  left unpopulated.
- A view owned by a superuser is refreshed only when every piece of user code in the snapshot
  is a superuser's too. Otherwise code written by a less privileged role could be reached from
  it and would run with superuser rights (one step from ``COPY ... TO PROGRAM``).
- A view whose owner does not exist on the target, or that the restoring role may not act as,
  is left unpopulated too.

Every other view is refreshed with ``SET ROLE`` to its owner. A view left unpopulated is in the
``WITH NO DATA`` state: queries on it fail until someone refreshes it, and the restore's notes
say who should. :func:`predict` decides from the schema archive's table of contents for the
plan; :func:`refresh` decides again from the target's catalogs once the schema is in, and that
decision is the one acted on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from datasafe.engines.postgres.connection import db_error, qualified

log = logging.getLogger(__name__)

#: pg_dump's names for the kinds of object whose code runs as whoever uses them: functions,
#: procedures and aggregates; views (a view's functions run as the querying role); operators;
#: domains (their CHECK expressions). Extension members and system schemas are never dumped.
CODE_KINDS = ("FUNCTION", "PROCEDURE", "AGGREGATE", "OPERATOR", "VIEW", "DOMAIN")
_MATVIEW = "MATERIALIZED VIEW "
_ENTRY = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<rest>.*)$")
_USER_SCHEMAS = """n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"""
#: Owners of user code in the target, as :data:`CODE_KINDS` lists it from the archive.
_CODE_AUTHORS = f"""
    SELECT DISTINCT pg_get_userbyid(code.owner) FROM (
        SELECT 'pg_proc'::regclass AS cls, p.oid, p.pronamespace AS nsp, p.proowner AS owner FROM pg_proc p
        UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relnamespace, c.relowner FROM pg_class c
          WHERE c.relkind = 'v'
        UNION ALL SELECT 'pg_operator'::regclass, o.oid, o.oprnamespace, o.oprowner FROM pg_operator o
        UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typnamespace, t.typowner FROM pg_type t
          WHERE t.typtype = 'd'
    ) code JOIN pg_namespace n ON n.oid = code.nsp
    WHERE {_USER_SCHEMAS} AND NOT EXISTS (SELECT 1 FROM pg_depend d
        WHERE d.classid = code.cls AND d.objid = code.oid AND d.deptype = 'e')"""


@dataclass(frozen=True)
class Role:
    """A role of the target server, as far as refreshing as it is concerned."""

    superuser: bool
    usable: bool  #: the restoring role may SET ROLE to it


@dataclass
class Facts:
    """Who owns what: the materialized views, the user code, and the target's roles."""

    owners: dict[str, str]  #: materialized view ("schema.name") -> its owner's role name
    authors: set[str]  #: the roles that own user code
    roles: dict[str, Role]  #: the target server's roles, by name


@dataclass(frozen=True)
class Decision:
    """Refresh ``matview`` as ``owner``, or (``owner`` None) leave it unpopulated for ``reason``."""

    matview: str
    owner: str | None
    reason: str = ""
    remedy: str = ""

    @property
    def note(self) -> str:
        nsp, rel = self.matview.split(".", 1)
        return (f"materialized view {self.matview} is left unpopulated: {self.reason}; to populate it, "
                f"{self.remedy}run REFRESH MATERIALIZED VIEW {qualified(nsp, rel)}")


def decide(matviews: Iterable[str], facts: Facts | None, *, no_owner: bool) -> list[Decision]:
    """The one rule: as whom each materialized view is refreshed, or why it is not.

    ``facts`` may be None only with ``no_owner``, which leaves every view unpopulated.
    """
    decisions = []
    for name in matviews:
        if no_owner or facts is None:
            decisions.append(Decision(
                name, None, "with --no-owner it is owned by the restoring role, so refreshing it would run "
                "code from the snapshot with that role's rights",
                "give it the owner it should have (ALTER MATERIALIZED VIEW ... OWNER TO), then "))
            continue
        owner = facts.owners.get(name)
        role = facts.roles.get(owner) if owner is not None else None
        if owner is None:
            decisions.append(Decision(name, None, "its owner in the snapshot is not known",
                                      "check its code and owner, then "))
        elif role is None:
            decisions.append(Decision(name, None, f"its owner {owner} does not exist on the target",
                                      f"create role {owner}, make it the view's owner, then "))
        elif role.superuser and (weaker := sorted(a for a in facts.authors if not _is_superuser(facts, a))):
            decisions.append(Decision(
                name, None, f"it is owned by superuser {owner} and the snapshot holds code written by less "
                f"privileged roles ({', '.join(weaker)}), which would run with superuser rights",
                "review that code (or give the view a less privileged owner), then "))
        elif not role.usable:
            decisions.append(Decision(name, None, f"the restoring role may not act as its owner {owner}",
                                      f"as {owner}, "))
        else:
            decisions.append(Decision(name, owner))
    return decisions


def _is_superuser(facts: Facts, name: str) -> bool:
    role = facts.roles.get(name)
    return role is not None and role.superuser  # a role missing on the target counts as less privileged


def target_roles(cur: psycopg.Cursor[Any]) -> dict[str, Role]:
    """Every role of the server, and whether the connected role may SET ROLE to it."""
    cur.execute("SELECT rolname, rolsuper, pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles")
    return {name: Role(bool(sup), bool(usable)) for name, sup, usable in cur.fetchall()}


def predict(listing: str, matviews: list[str], cur: psycopg.Cursor[Any]) -> list[Decision]:
    """Decide for the plan (owners restored), before anything changes: owners from the archive's
    ``pg_restore --list`` (``listing``), roles from the target server (``cur``)."""
    roles = target_roles(cur)
    return decide(matviews, archive_facts(listing, matviews, roles), no_owner=False)


def archive_facts(listing: str, matviews: list[str], roles: dict[str, Role]) -> Facts:
    """Owners of the materialized views and the user code, read from ``pg_restore --list``.

    An entry reads "<kind> <schema> <tag> <owner>", and names may contain spaces: a view's owner
    is what follows its known schema and name; code's owner is the longest role name of the target
    the entry ends with, else its last word (a role the target lacks, so it counts as less
    privileged). The plan only predicts; :func:`refresh` decides from the catalogs.
    """
    prefixes = sorted(((m.replace(".", " ", 1) + " ", m) for m in matviews), key=lambda p: -len(p[0]))
    owners: dict[str, str] = {}
    authors: set[str] = set()
    for line in listing.splitlines():
        entry = _ENTRY.match(line)
        if entry is None:
            continue
        rest = entry["rest"]
        if rest.startswith(_MATVIEW) and not rest.startswith(_MATVIEW + "DATA "):
            body = rest[len(_MATVIEW):]
            found = next(((m, body[len(p):]) for p, m in prefixes if body.startswith(p)), None)
            if found is not None and (found[0] not in owners or found[1] in roles):
                owners[found[0]] = found[1]
        elif kind := next((k for k in CODE_KINDS if rest.startswith(k + " ")), None):
            body = rest[len(kind) + 1:]
            known = [r for r in roles if body.endswith(" " + r)]
            authors.add(max(known, key=len) if known else body.rsplit(" ", 1)[-1])
    return Facts(owners, authors, roles)


def catalog_facts(cur: psycopg.Cursor[Any], matviews: list[str]) -> Facts:
    """Owners as the target's catalogs hold them after the schema is restored."""
    cur.execute("""SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm'""")
    wanted = set(matviews)
    owners = {name: owner for name, owner in cur.fetchall() if name in wanted}
    cur.execute(_CODE_AUTHORS)
    authors = {r[0] for r in cur.fetchall()}
    return Facts(owners, authors, target_roles(cur))


def plan_step(matviews: list[str], decisions: list[Decision] | None) -> str:
    """The plan's last step; ``decisions`` None: not decided yet (the archive was not read)."""
    step = "set sequence values; refresh materialized views"
    if not matviews:
        return step
    if decisions is None:
        return f"{step} {', '.join(matviews)}, each as its owner in the snapshot (see docs/postgresql.md)"
    refreshed = [f"{d.matview} as {d.owner}" for d in decisions if d.owner is not None]
    left = [d.matview for d in decisions if d.owner is None]
    parts = ["set sequence values"]
    if refreshed:
        parts.append(f"refresh materialized views {', '.join(refreshed)}")
    if left:
        parts.append(f"leave materialized views {', '.join(left)} unpopulated (see notes)")
    return "; ".join(parts)


def refresh(cur: psycopg.Cursor[Any], matviews: list[str], *, no_owner: bool) -> list[str]:
    """Refresh what was populated at backup time, each view as its owner; returns the notes of
    views left unpopulated (also logged). Retry passes cover views built on other views."""
    facts = None if no_owner else catalog_facts(cur, matviews)
    decisions = decide(matviews, facts, no_owner=no_owner)
    left = [d for d in decisions if d.owner is None]
    pending = [d for d in decisions if d.owner is not None]
    while pending:
        failed = [d for d in pending if not _refresh_as(cur, d.matview, d.owner)]  # type: ignore[arg-type]
        if len(failed) == len(pending):
            if not left:
                raise db_error("refreshing materialized views",
                               psycopg.Error(f"cannot refresh {', '.join(d.matview for d in failed)}"))
            reads = ", ".join(d.matview for d in left)
            left += [Decision(d.matview, None, f"it reads a materialized view left unpopulated ({reads})",
                              "populate that one first, then ") for d in failed]
            break
        pending = failed
    notes = [d.note for d in left]
    for note in notes:
        log.warning(note)
    return notes


def _refresh_as(cur: psycopg.Cursor[Any], matview: str, owner: str) -> bool:
    """REFRESH as ``owner``; False when a materialized view it reads is not populated yet."""
    nsp, rel = matview.split(".", 1)
    cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
    try:
        cur.execute(f"REFRESH MATERIALIZED VIEW {qualified(nsp, rel)}")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return False
    finally:
        cur.execute("RESET ROLE")
    log.debug("refreshed materialized view %s as %s", matview, owner)
    return True
