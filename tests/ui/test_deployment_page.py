"""The deployment page on a real project with two exported versions: the versions with what
export recorded, promote and rollback through a confirmation page and a CSRF-checked POST
(the same Project methods as the CLI, so the ledger records them), a POST without the token
refused with 403 and nothing changed, and a refused change shown with the CLI's message."""

from __future__ import annotations

from pagekit import csrf_field, logged_in, rows, text

from dlworkflow.project import Project
from dlworkflow.runtime import versions as V


def _confirm_and_post(c, action: str, version: int | None = None):
    params = {"action": action} | ({"version": version} if version is not None else {})
    confirm = c.get("/deployment/confirm", params=params)
    assert confirm.status_code == 200
    form = {"csrf": csrf_field(confirm.text)}
    if version is not None:
        form["version"] = str(version)
    return confirm, c.post(f"/deployment/{action}", data=form)


def test_the_versions_show_what_export_recorded(client, deploy_root):
    page = logged_in(client, deploy_root).get("/deployment").text
    shown = [text(r) for r in rows(page, "version")]
    assert [r.split()[0] for r in shown] == ["v2", "v1"]
    for row, version in zip(shown, (2, 1), strict=True):
        meta = V.read_metadata(deploy_root, version)
        assert meta["verdict"] in row and meta["forced"]["reason"] in row
        assert f"agreement {meta['parity']['agreement']:.4g}" in row
        assert f"n {meta['parity']['n']}" in row
    assert "Champion: none yet" in text(page)
    assert 'value="rollback"' not in page  # nothing to roll back to


def test_promote_then_rollback_from_the_page_moves_the_champion_and_the_ledger_has_both(
    client, deploy_root
):
    c = logged_in(client, deploy_root)
    confirm, done = _confirm_and_post(c, "promote", 1)
    assert "v1 becomes the champion" in text(confirm.text)
    assert V.champion(deploy_root) == 1  # the confirmation changed nothing; the POST did
    confirm, done = _confirm_and_post(c, "promote", 2)
    assert "v2 becomes the champion in place of v1" in text(confirm.text)
    assert done.status_code == 200 and "promote: champion is now v2" in text(done.text)
    assert V.champion(deploy_root) == 2
    confirm, done = _confirm_and_post(c, "rollback")
    assert "The previous champion, v1, becomes the champion again" in text(confirm.text)
    assert done.status_code == 200 and "rollback: champion is now v1" in text(done.text)
    assert V.champion(deploy_root) == 1
    ledger = Project.load(deploy_root).ledger
    promotes, rollbacks = ledger.history("promote"), ledger.history("rollback")
    assert [(r.outputs["from_version"], r.outputs["to_version"]) for r in promotes] == [
        (None, 1),
        (1, 2),
    ]
    assert [(r.outputs["from_version"], r.outputs["to_version"]) for r in rollbacks] == [(2, 1)]
    moves = [text(r) for r in rows(c.get("/deployment").text, "move")]
    assert [m.split()[:2] for m in moves] == [
        [str(rollbacks[0].id), "rollback"],
        [str(promotes[1].id), "promote"],
        [str(promotes[0].id), "promote"],
    ]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client, deploy_root):
    c = logged_in(client, deploy_root)
    pointer = V.pointer_path(deploy_root)
    assert c.post("/deployment/promote", data={"version": "1"}).status_code == 403
    assert c.post("/deployment/promote", data={"version": "1", "csrf": "0" * 64}).status_code == 403
    # a token from another login (another cookie) is not this one's
    confirm = c.get("/deployment/confirm", params={"action": "promote", "version": 1}).text
    other = client(deploy_root)
    other.cookies.set("dlw_ui", "x" * 40)
    assert other.post("/deployment/promote", data={"version": "1"}).status_code == 401
    assert not pointer.exists()
    assert Project.load(deploy_root).ledger.history("promote") == []
    assert (
        c.post(
            "/deployment/promote", data={"version": "1", "csrf": csrf_field(confirm)}
        ).status_code
        == 200
    )
    assert V.champion(deploy_root) == 1


def test_a_refused_change_shows_the_clis_message(client, deploy_root):
    from dlworkflow.errors import DlwError

    c = logged_in(client, deploy_root)
    _confirm_and_post(c, "promote", 1)
    try:
        Project.load(deploy_root).rollback()
    except DlwError as exc:
        expected = exc.render()
    _, refused = _confirm_and_post(c, "rollback")  # v1 is the only champion there has been
    assert refused.status_code == 409
    assert "Refused" in refused.text and "Traceback" not in refused.text
    assert " ".join(expected.split()) in text(refused.text)
    assert V.champion(deploy_root) == 1
    _, unknown = _confirm_and_post(c, "promote", 7)
    assert unknown.status_code == 409 and "There is no exported model version 7" in unknown.text
