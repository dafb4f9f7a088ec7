"""``datasafe deploy``: render what runs the configured fleet elsewhere (Kubernetes)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click

from datasafe.cli.group import cli, global_options
from datasafe.cli.state import emit_json, state
from datasafe.humanize import count

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _dns(kind: str) -> Callable[[click.Context, click.Parameter, str], str]:
    def check(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise click.BadParameter(f"{value!r} is no Kubernetes {kind} name (lower-case letters, digits, '-')")
        return value

    return check


@cli.group()
def deploy() -> None:
    """Render the deployment of every configured source (see docs/scaling.md)."""


@deploy.command("kubernetes")
@global_options(without=("identity", "storage"))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write one file per object group into DIR (kubectl apply -f DIR); default: print them.")
@click.option("--namespace", callback=_dns("namespace"), default="datasafe", show_default=True, metavar="NAME",
              help="Namespace of every object (one for datasafe alone: its ResourceQuota counts every pod).")
@click.option("--image", metavar="IMAGE", help="The datasafe image (built from the Dockerfile) [default: "
                                                "datasafe:VERSION].")
@click.option("--secret", callback=_dns("Secret"), default="datasafe-secrets", show_default=True, metavar="NAME",
              help="Secret with one key per ${NAME} that datasafe.yml refers to.")
@click.option("--pushgateway", metavar="URL",
              help="Prometheus Pushgateway the runs push their metrics to (default: config 'fleet.pushgateway_url').")
@click.option("--json", "as_json", is_flag=True, help="Print the files written and the schedules as JSON.")
def kubernetes(out: Path | None, namespace: str, image: str | None, secret: str, pushgateway: str | None,
               as_json: bool) -> None:
    """Render the Kubernetes manifests that back up every source of datasafe.yml.

    \b
    One CronJob per source (concurrencyPolicy Forbid, start times spread over
    fleet.window from fleet.start, UTC), a verify CronJob after the window, the
    ConfigMap with datasafe.yml, a ResourceQuota capping the pods that run at once
    (fleet.concurrency + 1) and the Namespace. Credentials come from the Secret
    (--secret; one key per ${NAME} in datasafe.yml), the policy key from the Secret
    datasafe-policy-key (key policy.key), the age identity of the verify job from
    datasafe-age-identity (key identity.txt): referenced, never written out.
    The storage must be s3://: it holds the snapshots and the leases every pod shares.
    """
    from datasafe.commands.deploy import kubernetes as render  # deferred: start-up time
    from datasafe.deploy.kubernetes import KubernetesOptions  # deferred: start-up time

    options = KubernetesOptions(namespace=namespace, secret=secret, **({"image": image} if image else {}))
    done = render(state().config_path, out=out, options=options, pushgateway=pushgateway)
    if as_json:
        emit_json(done.as_dict())
        return
    if out is None:
        click.echo("---\n".join(done.files[name] for name in sorted(done.files)), nl=False)
        return
    for source, schedule in done.schedules.items():
        click.echo(f"{source:<24} {schedule}")
    gone = f"; removed {', '.join(done.removed)}" if done.removed else ""
    click.echo(f"wrote {count(len(done.files), 'file')} into {out}{gone}", err=True)
