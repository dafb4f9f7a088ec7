"""Deferred keys: the CREATE TABLE a restore runs first, and what it adds after the load."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasafe.engines.mysql.keys import split_keys
from tests.conftest import MyDatabases
from tests.test_pg_faults import run_cli

CREATE = """CREATE TABLE `orders` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `customer_id` bigint(20) NOT NULL,
  `note` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u` (`note`(10)),
  KEY `by customer` (`customer_id`),
  FULLTEXT KEY `ft` (`note`),
  CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`),
  CONSTRAINT `positive` CHECK (`id` > 0)
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4"""


def test_secondary_and_foreign_keys_are_deferred() -> None:
    keys = split_keys(CREATE)
    assert keys.create == """CREATE TABLE `orders` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `customer_id` bigint(20) NOT NULL,
  `note` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `positive` CHECK (`id` > 0)
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4"""
    assert keys.alter_clauses() == [
        "ADD UNIQUE KEY `u` (`note`(10)), ADD KEY `by customer` (`customer_id`)",
        "ADD FULLTEXT KEY `ft` (`note`)",
    ]
    assert keys.foreign == [
        "CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)"]


def test_partitioned_and_keyless_tables_are_left_whole() -> None:
    partitioned = CREATE + "\n PARTITION BY HASH (`id`) PARTITIONS 2"
    assert split_keys(partitioned).create == partitioned
    plain = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
    keys = split_keys(plain)
    assert (keys.create, keys.secondary, keys.foreign) == (plain, [], [])


@pytest.mark.mysql
def test_restore_with_deferred_keys_keeps_every_key(my: MyDatabases, storage_dir: Path) -> None:
    source = my.create(
        "dsmykeys",
        "CREATE TABLE parent (id INT PRIMARY KEY, email VARCHAR(80), UNIQUE KEY email (email))",
        # the AUTO_INCREMENT column's only key is a secondary one: it cannot be deferred
        "CREATE TABLE counter (n INT AUTO_INCREMENT, k INT NOT NULL, PRIMARY KEY (k), KEY n (n))",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, body TEXT, KEY by_parent (parent_id), "
        "FULLTEXT KEY body (body), CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
        "INSERT INTO parent VALUES (1, 'a@example.com'), (2, 'b@example.com')",
        "INSERT INTO counter (k) VALUES (10), (20)",
        "INSERT INTO child VALUES (1, 1, 'first words'), (2, 2, 'second words')",
    )
    backup = run_cli(storage_dir, "backup", str(source))
    assert backup.exit_code == 0, backup.output
    target = my.url(my.new_name("dsmykeys_tgt"))
    restored = run_cli(storage_dir, "restore", backup.stdout.strip(), "--target", str(target),
                       "--confirm", target.database)
    assert restored.exit_code == 0, restored.output
    keys = """SELECT table_name, index_name, non_unique, GROUP_CONCAT(column_name ORDER BY seq_in_index), index_type
              FROM information_schema.statistics WHERE table_schema = DATABASE()
              GROUP BY table_name, index_name, non_unique, index_type ORDER BY table_name, index_name"""
    fks = """SELECT constraint_name, table_name, referenced_table_name FROM information_schema.referential_constraints
             WHERE constraint_schema = DATABASE() ORDER BY constraint_name"""
    assert my.query(target, keys) == my.query(source, keys)
    assert my.query(target, fks) == my.query(source, fks)
    assert my.query(target, "SELECT id FROM child WHERE MATCH(body) AGAINST ('second')") == [(2,)]
