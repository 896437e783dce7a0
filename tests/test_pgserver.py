"""Tests for the throw-away PostgreSQL test server."""

from __future__ import annotations

import socket

import psycopg

from pgserver import PostgresServer


def test_server_lifecycle() -> None:
    server = PostgresServer()
    server.start()
    try:
        assert server.running
        directory = server.directory
        assert directory.is_dir()
        port = server.port

        url = server.create_database("vigila_a")
        assert url == f"postgresql+psycopg://vigila@127.0.0.1:{port}/vigila_a"

        with psycopg.connect(server.dsn("vigila_a"), autocommit=True) as conn:
            conn.execute("CREATE TABLE marker (id int PRIMARY KEY)")
            conn.execute("INSERT INTO marker VALUES (42)")

        # A template must have no connections while it is copied.
        url_b = server.create_database("vigila_b", template="vigila_a")
        assert url_b.endswith(f":{port}/vigila_b")

        with psycopg.connect(server.dsn("vigila_b")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("select id from marker").fetchall() == [(42,)]
            row = conn.execute("SHOW listen_addresses").fetchone()
            assert row == ("127.0.0.1",)
            addr = conn.execute("select host(inet_server_addr())").fetchone()
            assert addr == ("127.0.0.1",)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW max_connections").fetchone() == ("200",)
            assert conn.execute("select current_user").fetchone() == ("vigila",)
            enc = conn.execute("SHOW server_encoding").fetchone()
            assert enc == ("UTF8",)

        with psycopg.connect(server.admin_dsn()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

        # Drop works even with an open connection (WITH (FORCE)).
        lingering = psycopg.connect(server.dsn("vigila_b"))
        try:
            server.drop_database("vigila_b")
        finally:
            lingering.close()
        with psycopg.connect(server.admin_dsn()) as conn:
            names = {r[0] for r in conn.execute("select datname from pg_database").fetchall()}
        assert "vigila_b" not in names
        assert "vigila_a" in names
    finally:
        server.stop()

    assert not server.running
    assert not directory.exists()
    # Nothing accepts connections on the old port any more.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_context_manager_and_idempotent_stop() -> None:
    with PostgresServer() as server:
        directory = server.directory
        with psycopg.connect(server.admin_dsn()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert not directory.exists()
    server.stop()  # second stop is a no-op
