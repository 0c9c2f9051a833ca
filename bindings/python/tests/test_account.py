"""Account, key backup and device linking through a real ``charm serve``."""

import threading

import pytest

import charm_kv


def test_backup_and_import_keep_the_identity(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    with charm_kv.open("db", data_dir=one, env=False) as kv:
        kv[b"k"] = b"v"
    backup = charm_kv.backup_keys(data_dir=one, env=False)
    assert backup[257:262] == b"ustar"
    key = charm_kv.backup_keys(private_key_only=True, data_dir=one, env=False)
    assert key.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    charm_kv.import_keys(backup, data_dir=two, env=False)
    with pytest.raises(charm_kv.InvalidArgumentError):
        charm_kv.import_keys(b"not a key", data_dir=two, env=False)
    with pytest.raises(charm_kv.NotConfiguredError):
        charm_kv.account_id(data_dir=two, env=False)


def test_link_two_devices(charm_server, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    with charm_kv.open("db", **charm_server.client_options(one)) as kv:
        kv[b"from-one"] = b"1"
        kv.sync()
    codes: list[str] = []
    asked: list[tuple[str, str]] = []
    ready = threading.Event()

    def on_code(code: str) -> None:
        codes.append(code)
        ready.set()

    def confirm(key: str, address: str) -> bool:
        asked.append((key, address))
        return True

    result: list[str] = []
    generator = threading.Thread(
        target=lambda: result.append(
            charm_kv.link(on_code=on_code, confirm=confirm, **charm_server.client_options(one))
        )
    )
    generator.start()
    assert ready.wait(60)
    with pytest.raises(charm_kv.LinkError):
        charm_kv.link("ZZZZZZ", **charm_server.client_options(two))
    assert charm_kv.link(codes[0], **charm_server.client_options(two)) == "linked"
    generator.join(60)
    assert result == ["linked"]
    assert asked and asked[0][0].startswith("ssh-ed25519 ")
    assert charm_kv.account_id(**charm_server.client_options(one)) == charm_kv.account_id(
        **charm_server.client_options(two)
    )
    keys = charm_kv.account_keys(**charm_server.client_options(two))
    assert len(keys) == 2 and sum(k.this_device for k in keys) == 1
    with charm_kv.open("db", **charm_server.client_options(two)) as kv:
        kv.sync()
        assert kv[b"from-one"] == b"1"


def test_link_cancel_from_another_thread(charm_server, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    charm_kv.account_id(**charm_server.client_options(one))

    # The generator, cancelled once it shows its code.
    cancel = charm_kv.LinkCancel()
    with pytest.raises(charm_kv.LinkError, match="cancelled"):
        charm_kv.link(
            on_code=lambda code: threading.Thread(target=cancel.cancel).start(),
            confirm=lambda key, address: True,
            timeout=60,
            cancel=cancel,
            **charm_server.client_options(one),
        )

    # The requester, cancelled while the generator (another thread) is asked to confirm.
    codes: list[str] = []
    code_shown, confirming, requester_done = (threading.Event() for _ in range(3))
    generated: list[BaseException] = []

    def on_code(code: str) -> None:
        codes.append(code)
        code_shown.set()

    def confirm(key: str, address: str) -> bool:
        confirming.set()
        requester_done.wait(60)
        return False

    def generate() -> None:
        try:
            charm_kv.link(
                on_code=on_code, confirm=confirm, timeout=60, **charm_server.client_options(one)
            )
        except BaseException as e:
            generated.append(e)

    generator = threading.Thread(target=generate)
    generator.start()
    assert code_shown.wait(60)
    cancel = charm_kv.LinkCancel()
    canceller = threading.Thread(target=lambda: confirming.wait(60) and cancel.cancel())
    canceller.start()
    try:
        with pytest.raises(charm_kv.LinkError, match="cancelled"):
            charm_kv.link(codes[0], timeout=60, cancel=cancel, **charm_server.client_options(two))
    finally:
        requester_done.set()
        generator.join()
        canceller.join()
    assert len(generated) == 1 and isinstance(generated[0], charm_kv.LinkError)

    keys = charm_kv.account_keys(**charm_server.client_options(one))
    assert [k.this_device for k in keys] == [True]
