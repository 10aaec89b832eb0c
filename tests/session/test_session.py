"""The read-only ``Session``: Symfony's read API over plain and attribute-bag sessions."""

from __future__ import annotations

from twisted.internet import defer

from ratchetpy.session import Session

SYMFONY = {
    "_sf2_attributes": {"name": "alice", "roles": ["ROLE_USER"], "_security_main": "token"},
    "_sf2_flashes": {"notice": ["Saved", "Welcome back"], "error": []},
    "_sf2_meta": {"u": 1700000100, "c": 1700000000, "l": 3600},
}


def test_plain_php_keys_are_attributes():
    session = Session({"name": "bob", "cart": [1, 2]}, "a" * 26, "PHPSESSID")
    assert session.get("name") == "bob"
    assert session.get("missing") is None
    assert session.get("missing", "guest") == "guest"
    assert session.has("cart") and not session.has("missing")
    assert session.all() == {"name": "bob", "cart": [1, 2]}
    assert (session.get_id(), session.get_name()) == ("a" * 26, "PHPSESSID")
    assert session.is_started() and not session.is_empty()


def test_symfony_attribute_bag_hides_its_own_keys():
    session = Session(SYMFONY, "b" * 32, "MOCKSESSID")
    assert session.get("name") == "alice"
    assert session.get("roles") == ["ROLE_USER"]
    assert not session.has("_sf2_meta") and not session.has("_sf2_attributes")
    assert set(session.all()) == {"name", "roles", "_security_main"}
    assert session.raw["_sf2_meta"]["c"] == 1700000000


def test_bag_wins_over_a_plain_key_of_the_same_name():
    session = Session({"name": "plain", "other": 1, "_sf2_attributes": {"name": "bag"}})
    assert session.get("name") == "bag"
    assert session.all() == {"name": "bag", "other": 1}


def test_a_null_value_is_set():
    session = Session({"gone": None})
    assert session.has("gone") and session.get("gone", "x") is None


def test_flash_bag_reads_without_consuming():
    session = Session(SYMFONY)
    bag = session.get_flash_bag()
    assert bag.peek("notice") == ["Saved", "Welcome back"]
    assert bag.get("notice") == ["Saved", "Welcome back"]
    assert bag.peek("notice") == ["Saved", "Welcome back"]
    assert bag.peek("warning") == [] and bag.peek("warning", ["x"]) == ["x"]
    assert bag.has("notice") and not bag.has("error")
    assert bag.keys() == ["notice"]
    assert session.flashes == {"notice": ["Saved", "Welcome back"], "error": []}


def test_metadata_bag():
    meta = Session(SYMFONY).get_metadata_bag()
    assert (meta.get_created(), meta.get_last_used(), meta.get_lifetime()) == (1700000000, 1700000100, 3600)
    empty = Session({}).get_metadata_bag()
    assert (empty.get_created(), empty.get_last_used(), empty.get_lifetime()) == (0, 0, 0)


def test_a_php_list_as_bag_is_read_by_index():
    # PHP arrays with keys 0..n-1 decode as lists.
    assert Session({"_sf2_attributes": ["zero", "one"]}).get(1) == "one"


def test_empty_session_and_repr_hides_values():
    session = Session(None, "", status="no-cookie")
    assert session.is_empty() and session.all() == {} and session.status == "no-cookie"
    secret = Session({"token": "s3cret"}, "c" * 26)
    assert "s3cret" not in repr(secret) and "1 attribute" in repr(secret)


def test_reload_reads_again_and_updates_in_place():
    answers = [({"name": "new"}, "found")]
    session = Session({"name": "old"}, "d" * 26, loader=lambda: defer.succeed(answers.pop()))
    fired = []
    session.reload().addCallback(fired.append)
    assert fired == [session]
    assert session.get("name") == "new" and session.status == "found"


def test_reload_without_a_store_keeps_the_session():
    session = Session({"name": "x"})
    fired = []
    session.reload().addCallback(fired.append)
    assert fired == [session] and session.get("name") == "x"


def test_mapping_conveniences():
    session = Session({"a": 1, "_sf2_attributes": {"b": 2}})
    assert "a" in session and "b" in session and "_sf2_attributes" not in session
    assert session["b"] == 2 and len(session) == 2 and sorted(session) == ["a", "b"]
