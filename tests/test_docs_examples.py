"""Every console and shell example in README.md and docs/*.md runs here, as written, and prints
what the page says it prints.

Which blocks: every fenced ``console``, ``sh``, ``bash`` and ``cron`` block. A block whose fence
is preceded, on the line just before, by ``<!-- illustrative ... -->`` is not run: it needs what
this machine does not have (S3 on AWS, cron, systemd, Kubernetes, another host, files the page
does not show). Every other block is run; the test fails on a block that is neither.

How a page runs: its blocks in order, in one scratch folder (``configuration.md``: one folder per
block, each example there stands alone), against the local PostgreSQL server, with the state the
page says it starts from (the database ``docs_shop`` that quickstart.md backs up, the SQLite file
``notes.db`` of sqlite.md, the demo's shop, the ``datasafe.yml`` the page shows). ``$ command``
lines run in bash; the lines below them are the output.

What is substituted: database and role names ``docs_*`` get a prefix of their own per page
(``docs_1a2b3c_shop``), so runs never meet; ``/srv/datasafe``, ``/etc/datasafe`` and
``/tmp/docs_*`` are folders in the scratch folder. In the output, those read as the page writes
them again, the scratch folder as ``/home/me``, and the checkout's folder is left out.

What is compared: the exit code (0, or the one a ``# exit N`` comment on the command or a
following ``$ echo $?`` states), and every output line the page shows, in order, after ids, times,
numbers, sizes and digests are made placeholders; a line that ends in ``...`` only up to there
(the rest differs from run to run). Lines the page leaves out (``...``, log lines of a command
shown without them) may be there; lines it shows must be. Log lines (``datasafe: ...``) are
compared with stderr, whose JSON lines (stderr is no terminal here) are read as the human lines a
terminal shows.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datasafe.urls import DatabaseURL
from tests.docs_state import Servers, make_notes

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = ("console", "sh", "bash", "cron")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
ILLUSTRATIVE = re.compile(r"^\s*<!--\s*illustrative\b.*-->\s*$")
EXIT_COMMENT = re.compile(r"#\s*exit\s+(\d+)\s*$")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


# -- reading the pages ----------------------------------------------------------------------------
@dataclass
class Command:
    text: str
    output: list[str]
    exit_code: int | None  #: None: 0 unless the output shows an error, which must then say its code


@dataclass
class Block:
    page: str  #: path relative to the checkout
    line: int  #: of the opening fence, 1-based
    lang: str
    body: list[str]
    illustrative: bool

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[Command]:
        """The ``$`` commands of a console block, with the output shown below each."""
        out: list[Command] = []
        lines = iter(self.body)
        for line in lines:
            if line.startswith("$ "):
                text = line[2:]
                while text.endswith("\\"):
                    text = text + "\n" + next(lines)
                code = EXIT_COMMENT.search(text)
                out.append(Command(text, [], int(code.group(1)) if code else None))
            elif out:
                out[-1].output.append(line)
            elif line.strip():
                raise AssertionError(f"{self.where}: output before the first command: {line!r}")
        return out


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(2):
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if lang in SHELL_LANGS:
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
            marked = i > 0 and bool(ILLUSTRATIVE.match(lines[i - 1]))
            found.append(Block(str(page.relative_to(ROOT)), i + 1, lang, body, marked))
        i = end + 1
    return found


def preceding_yaml(block: Block, nth: int = 1) -> str:
    """The ``nth`` last YAML block above ``block`` on its page: the configuration it shows."""
    lines = (ROOT / block.page).read_text(encoding="utf-8").splitlines()[:block.line - 1]
    starts = [i for i, line in enumerate(lines) if line.strip() == "```yaml"]
    start = starts[-nth]
    end = next(j for j in range(start + 1, len(lines)) if lines[j].strip() == "```")
    return "\n".join(lines[start + 1:end]) + "\n"


# -- comparing output -----------------------------------------------------------------------------
_PLACEHOLDERS = [
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}"), "<id>"),
    (re.compile(r"\d{8}T\d{12}Z-\w+-[0-9a-f]{6}"), "<record>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b[0-9A-F]{8}-[0-9A-F]{8}-\d+\b"), "<pg-snapshot>"),
    (re.compile(r"\b[0-9A-F]+/[0-9A-F]+\b"), "<lsn>"),
    (re.compile(r"\b\d+:\d+:[\d,]*"), "<txids>"),
    (re.compile(r"age1[02-9ac-hj-np-z]{58}"), "<recipient>"),
    (re.compile(r"-?\d[\d,]*(\.\d+)? (B|KiB|MiB|GiB|TiB)\b"), "<size>"),
    (re.compile(r"\b[0-9a-f]{8,}\b"), "<hex>"),
    (re.compile(r"\d[\d,]*(\.\d+)?"), "<n>"),
]


def normal(line: str) -> str:
    for pattern, placeholder in _PLACEHOLDERS:
        line = pattern.sub(placeholder, line)
    return " ".join(line.split())


def missing_lines(expected: list[str], actual: list[str]) -> list[str]:
    """The expected lines not found, in order, among the actual ones (after :func:`normal`)."""
    have = [normal(a) for a in actual]
    pos, missing = 0, []
    for line in expected:
        want = normal(line.rstrip().removesuffix("..."))
        varies = line.rstrip().endswith("...")  # the rest of the line differs from run to run
        found = next((i for i in range(pos, len(have)) if have[i] == want or (varies and have[i].startswith(want))),
                     None)
        if found is None:
            missing.append(line)
        else:
            pos = found + 1
    return missing


def human(stderr: str) -> tuple[list[str], list[str]]:
    """stderr as (log lines as a terminal shows them, other lines)."""
    logs, other = [], []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and "message" in entry and "level" in entry:
            level = "" if entry["level"] == "info" else f"{entry['level']}: "
            logs.append(f"datasafe: {level}{entry['message']}")
        elif line.startswith("datasafe: "):
            logs.append(line)
        else:
            other.append(line)
    return logs, other


# -- running a page -------------------------------------------------------------------------------
@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Page:
    """One page's scratch folder, environment and names."""

    root: Path
    tag: str
    env: dict[str, str]
    server: DatabaseURL
    cwd: Path = field(init=False)
    databases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cwd = self.root / "work"
        self.cwd.mkdir(parents=True)

    def sub(self, text: str) -> str:
        """A command or a file as the page writes it, with this run's names and folders."""
        text = re.sub(r"\bdocs_", f"docs_{self.tag}_", text)
        for doc, real in self.paths():
            text = text.replace(doc, real)
        return text

    def unsub(self, text: str) -> str:
        for doc, real in self.paths():
            text = text.replace(real, doc)
        text = text.replace(str(self.cwd), "/home/me").replace(f"{ROOT}/", "")
        return text.replace(f"docs_{self.tag}_", "docs_")

    def paths(self) -> list[tuple[str, str]]:
        return [("/srv/datasafe", f"{self.root}/srv/datasafe"), ("/etc/datasafe", f"{self.root}/etc/datasafe"),
                ("/tmp/docs_", f"{self.root}/tmp/docs_"), ("/tmp/schema.pgdump", f"{self.root}/tmp/schema.pgdump")]

    def run(self, command: str, timeout: float = 300) -> Run:
        proc = subprocess.run(["bash", "-c", self.sub(command)], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        return Run(proc.returncode, self.unsub(proc.stdout), self.unsub(proc.stderr))

    def export(self, command: str) -> Run:
        """``export NAME=...``: run it and keep what it set for the following commands."""
        proc = subprocess.run(["bash", "-c", self.sub(command) + "\nenv -0"], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            self.env = dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)
        return Run(proc.returncode, "", proc.stderr)

    def datasafe(self, *args: str) -> str:
        result = self.run(" ".join(["datasafe", *args]))
        assert result.code == 0, (args, result.stderr)
        return result.stdout.strip()

    def write(self, path: str, text: str) -> Path:
        target = Path(self.sub(path))
        target = target if target.is_absolute() else self.cwd / target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.sub(text))
        return target

    def fresh_folder(self, name: str) -> None:
        self.cwd = self.root / name
        self.cwd.mkdir(parents=True, exist_ok=True)


def execute(page: Page, block: Block) -> list[str]:
    """Run ``block``; returns what did not go as the page says."""
    problems = []
    if block.lang != "console":
        result = page.run("\n".join(block.body))
        if result.code != 0:
            problems.append(f"{block.where}: the script exited {result.code}: {result.stderr.strip()[-500:]}")
        return problems
    commands = block.commands()
    previous: Run | None = None
    for i, cmd in enumerate(commands):
        if cmd.text.strip() == "echo $?":
            shown = next((line.strip() for line in cmd.output if line.strip()), "")
            if previous is None or str(previous.code) != shown:
                problems.append(f"{block.where}: `echo $?` shows {shown}, the command before exited "
                                f"{previous.code if previous else '-'}")
            continue
        result = page.export(cmd.text) if cmd.text.startswith("export ") else page.run(cmd.text)
        previous = result
        stated = cmd.exit_code
        if stated is None and i + 1 < len(commands) and commands[i + 1].text.strip() == "echo $?":
            stated = int(next(line for line in commands[i + 1].output if line.strip()).strip())
        shows_error = any(line.startswith("datasafe: error:") for line in cmd.output)
        if shows_error and stated is None:
            problems.append(f"{block.where}: `{cmd.text}` shows an error but no exit code (add `# exit N`)")
        want = stated if stated is not None else 0
        if result.code != want:
            problems.append(f"{block.where}: `{cmd.text}` exited {result.code}, the page says {want}: "
                            f"{result.stderr.strip()[-600:]}")
            continue
        logs, other = human(result.stderr)
        shown = [line for line in cmd.output if line.strip() and line.strip() != "..."]
        missing = missing_lines([s for s in shown if not s.startswith("datasafe:")],
                                result.stdout.splitlines() + other)
        missing += missing_lines([s for s in shown if s.startswith("datasafe:")], logs)
        if missing:
            problems.append(f"{block.where}: `{cmd.text}` did not print, in this order:\n    "
                            + "\n    ".join(missing) + "\n  it printed:\n    "
                            + "\n    ".join((result.stdout + result.stderr).splitlines()[:40]))
    return problems


# -- the state pages start from ---------------------------------------------------------------------
def demo_shop(page: Page) -> None:
    """A snapshot of the demo's shop as source ``shop`` in ./datasafe-backups (masking.md, scan.md)."""
    from datasafe.demo import create_shop

    create_shop(page.cwd / "shop.db", 2000)
    page.datasafe("backup", "sqlite:///shop.db")


def quickstart_state(page: Page, servers: Servers) -> None:
    """Where quickstart.md leaves off: ``shop`` configured in datasafe.yml, a nightly snapshot and
    one tagged pre-deploy-2.4.0 (postgresql.md and operations.md start from it)."""
    servers.shop(page.tag)
    page.write("datasafe.yml", "sources:\n  shop:\n    url: postgresql://postgres@127.0.0.1:5432/docs_shop\n")
    page.datasafe("backup", "shop", "--tag", "nightly")
    page.datasafe("backup", "shop", "--tag", "pre-deploy-2.4.0")


def quickstart_config(page: Page, block: Block) -> None:
    """The illustrative set-up steps above: DATASAFE_CONFIG names the file the page shows."""
    page.write("/etc/datasafe/datasafe.yml", preceding_yaml(block))
    page.env["DATASAFE_CONFIG"] = page.sub("/etc/datasafe/datasafe.yml")


def quickstart_secrets(page: Page, block: Block) -> None:
    page.env["SHOP_DB_PASSWORD"] = "example-only"  # what /etc/datasafe/secrets.env sets


def other_source(page: Page, block: Block) -> None:
    """"with snapshots of another database in the same storage": a crm next to shop, for one block."""
    make_notes(page.cwd / "crm.db")
    page.datasafe("backup", "sqlite:///crm.db", "--name", "crm")


def without_other_source(page: Page, block: Block) -> None:
    shutil.rmtree(page.sub("/srv/datasafe/crm"))


def corrupt_copy(page: Page, block: Block) -> None:
    """"A flipped byte in one chunk (done on purpose, in a copy of the storage)": the last byte of
    sales.orders' chunk, which is part of zstd's checksum of the frame."""
    copy = Path(page.sub("/tmp/docs_corrupt"))
    shutil.copytree(page.sub("/srv/datasafe"), copy)
    latest = max((copy / "shop").iterdir(), key=lambda p: p.name)
    manifest = json.loads((latest / "manifest.json").read_text())
    entry = next(t for t in manifest["tables"] if t["name"] == "sales.orders")
    chunk = latest / entry["chunks"][0]["path"]
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))


def yaml_here(page: Page, block: Block) -> None:
    page.write("datasafe.yml", preceding_yaml(block))


def notes_here(page: Page, block: Block) -> None:
    make_notes(page.cwd / "notes.db")


def full_example(page: Page, block: Block) -> None:
    """"With this file in etc/datasafe.yml": a folder holding only that."""
    page.fresh_folder("full-example")
    page.write("etc/datasafe.yml", preceding_yaml(block))
    make_notes(Path(page.sub("/tmp/docs_sqlite/notes.db")))


def snapshot_folder(page: Page, block: Block) -> None:
    """"Run in the snapshot folder ... into the existing empty database docs_manual"."""
    page.datasafe("backup", "postgresql://postgres@127.0.0.1:5432/docs_shop", "--name", "shop")
    (folder,) = (page.cwd / "datasafe-backups" / "shop").iterdir()
    page.run("psql -q postgresql://postgres@127.0.0.1:5432/postgres -c 'CREATE DATABASE docs_manual'")
    page.cwd = folder


def shop(page: Page, servers: Servers) -> None:
    servers.shop(page.tag)


def shop_and_notes(page: Page, servers: Servers) -> None:
    servers.shop(page.tag)
    make_notes(page.cwd / "notes.db")


def notes(page: Page, servers: Servers) -> None:
    make_notes(page.cwd / "notes.db")


def demo(page: Page, servers: Servers) -> None:
    demo_shop(page)


#: per page: what it starts from
SETUP: dict[str, Callable[[Page, Servers], None]] = {
    "README.md": shop,
    "docs/quickstart.md": shop_and_notes,
    "docs/sqlite.md": notes,
    "docs/configuration.md": shop,
    "docs/postgresql.md": quickstart_state,
    "docs/operations.md": quickstart_state,
    "docs/format.md": shop,
    "docs/masking.md": demo,
    "docs/scan.md": demo,
}
#: per page and block (by its first line, exactly): what happens on the page between the blocks
BEFORE: dict[tuple[str, str], Callable[[Page, Block], None]] = {
    ("docs/quickstart.md", "$ datasafe backup shop                                # exit 3"): quickstart_config,
    ("docs/quickstart.md", "$ datasafe backup shop --tag nightly"): quickstart_secrets,
    ("docs/quickstart.md", "$ datasafe show latest                                # exit 2"): other_source,
    ("docs/quickstart.md", "$ datasafe verify shop/latest --storage /tmp/docs_corrupt"): corrupt_copy,
    ("docs/configuration.md", "$ datasafe backup                                     # exit 2"): yaml_here,
    ("docs/configuration.md", "$ datasafe backup shop                                # exit 3"): yaml_here,
    ("docs/configuration.md", "$ datasafe backup sqlite:///notes.db"): notes_here,
    ("docs/configuration.md", "$ export SHOP_DB_PASSWORD=example-only"): full_example,
    ("docs/format.md", "set -e"): snapshot_folder,
}
AFTER: dict[tuple[str, str], Callable[[Page, Block], None]] = {
    ("docs/quickstart.md", "$ datasafe show latest                                # exit 2"): without_other_source,
}
#: pages whose examples each stand alone (a folder of their own)
ONE_FOLDER_PER_BLOCK = {"docs/configuration.md"}


def first_line(block: Block) -> str:
    return next((line for line in block.body if line.strip()), "")


def hooks(table: dict[tuple[str, str], Callable[[Page, Block], None]], block: Block
          ) -> list[Callable[[Page, Block], None]]:
    return [fn for (page, start), fn in table.items() if page == block.page and first_line(block) == start]


# -- the test ---------------------------------------------------------------------------------------
def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def test_every_block_is_run_or_marked_illustrative() -> None:
    """The docs have examples, and each is either run below or says why it cannot be."""
    found = all_blocks()
    assert len(found) > 30
    assert sum(not b.illustrative for b in found) > 30
    present = {(b.page, first_line(b)) for b in found if not b.illustrative}
    stale = [key for key in (*BEFORE, *AFTER) if key not in present]
    assert stale == [], f"hooks for blocks that are no longer there: {stale}"


@pytest.fixture(scope="module")
def servers(postgres_server: DatabaseURL) -> Iterator[Servers]:
    made = Servers(postgres_server)
    yield made
    made.drop()


def page_env(root: Path) -> dict[str, str]:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "datasafe"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datasafe.cli "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATASAFE_", "PG", "COLUMNS"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
               XDG_CONFIG_HOME=str(root / "config"), DATASAFE_CACHE_DIR=os.environ.get("DATASAFE_CACHE_DIR", ""),
               HOME=str(root / "home"), LC_ALL="C.UTF-8", TZ="UTC")
    return env


@pytest.mark.parametrize("name", [str(p.relative_to(ROOT)) for p in PAGES if any(
    not b.illustrative for b in blocks(p))])
def test_examples_of_a_page_run_as_written(name: str, tmp_path: Path, servers: Servers,
                                           postgres_server: DatabaseURL) -> None:
    tag = secrets.token_hex(3)
    servers.tags.append(tag)
    page = Page(tmp_path, tag, page_env(tmp_path), postgres_server)
    (tmp_path / "tmp").mkdir()
    setup = SETUP.get(name)
    if setup is not None:
        setup(page, servers)
    problems: list[str] = []
    for n, block in enumerate(b for b in blocks(ROOT / name) if not b.illustrative):
        if name in ONE_FOLDER_PER_BLOCK:
            page.fresh_folder(f"block-{n}")
        for hook in hooks(BEFORE, block):
            hook(page, block)
        problems += execute(page, block)
        for hook in hooks(AFTER, block):
            hook(page, block)
    assert not problems, "\n\n".join(problems)
