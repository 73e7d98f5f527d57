"""Bad input gets a 4xx, never a 500, on SQLite and PostgreSQL; odd but valid text round-trips.

Malformed JSON, oversized bodies (with and without Content-Length, in process and under
gunicorn), ids beyond 64 bits, NUL bytes, unicode, and LIKE wildcards in search keywords.
"""

import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from bench.databases import sqlite_url
from bench.servers import Server, serving_stack
from tests.utils.migrations import migrate
from tests.utils.recipe import create_recipe, recipe_payload

MAX_BODY_SIZE = Settings.model_fields["MAX_BODY_SIZE"].default
SEVERAL_MB = 8 * 1024 * 1024
# An oversized body must be turned away long before it could all be read.
QUICKLY = 5.0


@pytest.fixture
def recipe_id(client: TestClient) -> int:
    created = create_recipe(client, label="Plain stew")
    assert isinstance(created["id"], int)
    return created["id"]


# --- malformed JSON ------------------------------------------------------------------------

MALFORMED_JSON = [
    b'{"label": "Stew", ',
    b'{"label": "Stew",}',
    b"{'label': 'Stew'}",
    b"label=Stew",
    b'{"label": "Stew"}}',
    b"",
]


@pytest.mark.parametrize("body", MALFORMED_JSON, ids=repr)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/recipe/"), ("PATCH", "/recipe/{id}"), ("POST", "/user/")]
)
def test_malformed_json_body_is_rejected_with_422(
    client: TestClient, recipe_id: int, method: str, path: str, body: bytes
) -> None:
    response = client.request(
        method,
        path.format(id=recipe_id),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, f"{method} {path} {body!r}: {response.text}"
    assert isinstance(response.json()["detail"], list), response.text


@pytest.mark.parametrize("body", [b"[]", b'"Stew"', b"null", b"42", b'[{"label": "Stew"}]'])
def test_json_that_is_not_an_object_is_rejected_with_422(client: TestClient, body: bytes) -> None:
    response = client.post("/recipe/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, f"{body!r}: {response.text}"


def test_body_that_is_not_utf8_is_rejected_with_400_as_documented(
    app: FastAPI, client: TestClient
) -> None:
    response = client.post(
        "/recipe/", content=b'{"label": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    documented = app.openapi()["paths"]["/recipe/"]["post"]["responses"]
    assert "400" in documented, documented


# --- oversized bodies ----------------------------------------------------------------------


def oversized_label_body(size: int) -> bytes:
    return b'{"label": "' + b"a" * size + b'", "source": null, "url": null, "submitter_id": null}'


def test_body_of_several_mb_with_content_length_is_rejected_with_413(client: TestClient) -> None:
    started = time.monotonic()
    response = client.post(
        "/recipe/",
        content=oversized_label_body(SEVERAL_MB),
        headers={"Content-Type": "application/json"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 413, response.text[:300]
    assert elapsed < QUICKLY, f"took {elapsed:.1f}s"


def test_chunked_body_of_several_mb_is_rejected_with_413(client: TestClient) -> None:
    body = oversized_label_body(SEVERAL_MB)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent with chunked encoding
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(
        "/recipe/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:300]
    assert "content-length" not in response.request.headers


def test_body_just_under_the_limit_is_read_and_validated(client: TestClient) -> None:
    body = oversized_label_body(MAX_BODY_SIZE - 200)
    assert len(body) < MAX_BODY_SIZE
    response = client.post("/recipe/", content=body, headers={"Content-Type": "application/json"})
    # Read in full and refused by validation (label too long), not by the size limit.
    assert response.status_code == 422, response.text[:300]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = sqlite_url(tmp_path_factory.mktemp("bad-input") / "served.db")
    migrate(url)
    with serving_stack(url, workers=2) as server:
        yield server


def send_raw(server: Server, head: bytes, body: Iterator[bytes]) -> tuple[bytes, int, float]:
    """Send `head` and then `body` while watching for an early answer; returns the start of the
    response, how many body bytes were sent before it came, and the seconds it took."""
    port = int(server.base_url.rsplit(":", 1)[1])
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() - started > 30:
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed its end: its answer is waiting
                break
            sent += len(chunk)
        sock.settimeout(10)
        response = b""
        while b"\r\n\r\n" not in response:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    return response, sent, time.monotonic() - started


TOTAL_UPLOAD = 64 * 1024 * 1024


def endless_label(piece: int = 16 * 1024) -> Iterator[bytes]:
    yield b'{"label": "'
    for _ in range(TOTAL_UPLOAD // piece):
        yield b"a" * piece


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_oversized_body_under_gunicorn_is_answered_413_before_it_is_all_sent(
    gunicorn: Server, framing: str
) -> None:
    head = b"POST /recipe/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if framing == "content-length":
        head += b"Content-Length: %d\r\n\r\n" % TOTAL_UPLOAD
        body = endless_label()
    else:
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        body = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in endless_label())
    response, sent, elapsed = send_raw(gunicorn, head, body)
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), f"{framing}: {response[:300]!r}"
    assert sent < TOTAL_UPLOAD // 2, f"{framing}: the server took {sent} bytes before answering"
    assert elapsed < QUICKLY, f"{framing}: answered after {elapsed:.1f}s"
    after = httpx.get(gunicorn.base_url + "/health", timeout=10)
    assert after.status_code == 200, after.text


# --- ids beyond what the database can hold -------------------------------------------------

HUGE_IDS = [
    "2147483648",  # one past the 32-bit primary key
    "9223372036854775808",  # one past 64 bits
    "18446744073709551616",
    "1" + "0" * 40,
    "-9223372036854775809",
    "0",
    "1e3",
    "0x10",
]


@pytest.mark.parametrize("value", HUGE_IDS)
def test_id_outside_the_key_range_is_a_4xx(client: TestClient, value: str) -> None:
    for method, path in [
        ("GET", f"/recipe/{value}"),
        ("PATCH", f"/recipe/{value}"),
        ("DELETE", f"/recipe/{value}"),
        ("GET", f"/user/{value}"),
    ]:
        response = client.request(method, path, json={"label": "x"} if method == "PATCH" else None)
        assert 400 <= response.status_code < 500, f"{method} {path}: {response.status_code}"


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64, 10**40, -(2**63) - 1])
def test_submitter_id_outside_the_key_range_in_a_body_is_422(
    client: TestClient, value: int
) -> None:
    response = client.post("/recipe/", json=recipe_payload(label="Big id stew", submitter_id=value))
    assert response.status_code == 422, response.text
    response = client.get("/search/", params={"keyword": "stew", "max_results": value})
    assert response.status_code == 422, response.text


# --- text: unicode and NUL bytes -----------------------------------------------------------

UNICODE_LABELS = [
    "Pho bò 🍜🔥",
    "مرق الدجاج بالليمون",  # right-to-left
    "קציצות ‏ברוטב‏",  # with right-to-left marks
    "Cre\u0300me bru\u0302le\u0301e",  # combining accents
    "👩‍👩‍👧‍👦 family feast",  # zero-width joiners
    "麻婆豆腐",
    "🍲" * 256,  # the limit counts characters, not bytes
]


@pytest.mark.parametrize("label", UNICODE_LABELS)
def test_unicode_text_round_trips_unchanged(client: TestClient, label: str) -> None:
    created = create_recipe(client, label=label, source=label[:100])
    assert created["label"] == label
    fetched = client.get(f"/recipe/{created['id']}").json()
    assert fetched["label"] == label, fetched
    assert fetched["source"] == label[:100], fetched
    keyword = label[1:4]
    found = client.get("/search/", params={"keyword": keyword, "max_results": 100})
    assert found.status_code == 200, found.text
    assert created["id"] in [r["id"] for r in found.json()["results"]], (keyword, found.text)


def test_text_over_256_characters_is_422_even_when_each_is_one_emoji(client: TestClient) -> None:
    response = client.post("/recipe/", json=recipe_payload(label="🍲" * 257))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("field", ["label", "source"])
def test_nul_byte_in_recipe_text_is_422(client: TestClient, recipe_id: int, field: str) -> None:
    payload = recipe_payload(label="Stew") | {field: "Ste\x00w"}
    created = client.post("/recipe/", json=payload)
    assert created.status_code == 422, created.text
    patched = client.patch(f"/recipe/{recipe_id}", json={field: "Ste\x00w"})
    assert patched.status_code == 422, patched.text


def test_nul_byte_in_user_name_and_search_keyword_is_422(client: TestClient) -> None:
    response = client.post("/user/", json={"email": "nul@example.com", "first_name": "A\x00"})
    assert response.status_code == 422, response.text
    response = client.get("/search/", params={"keyword": "ste\x00w"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "url", ["http://example.com/a\x00b", "http://example.com/\x00", "http://exa\x00mple.com/"]
)
def test_nul_byte_in_url_is_rejected_or_normalised_away(client: TestClient, url: str) -> None:
    """URLs are parsed as browsers do (WHATWG): a NUL in the path is percent-encoded, one at
    either end is stripped, one in the host is invalid. A raw NUL is never stored."""
    response = client.post("/recipe/", json=recipe_payload(label="Stew", url=url))
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        stored = client.get(f"/recipe/{response.json()['id']}").json()["url"]
        assert "\x00" not in stored, repr(stored)


@pytest.mark.parametrize("escaped", ["\\ud800", "a\\udfffb", "\\udc00\\ud800"])
def test_lone_surrogate_in_text_is_422(client: TestClient, escaped: str) -> None:
    # Valid JSON, and Python decodes it, but no database can store it as UTF-8.
    body = f'{{"label": "{escaped}", "source": null, "url": null, "submitter_id": null}}'
    response = client.post("/recipe/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text


# --- LIKE wildcards in search keywords -----------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "matching", "not_matching"),
    [
        ("0% f", "Stew 100% fat free", "Stew 100 fat free"),
        ("d_an", "Cold_and hot stew", "Coldsand hot stew"),
        ("b\\s", "Stew a/b\\soup", "Stew a/bxsoup"),
        ("%%%", "Stew %%% strong", "Stew plain strong"),
        ("___", "Stew ___ blank", "Stew abc blank"),
        ("\\%_", "Stew \\%_ mix", "Stew \\ab mix"),
    ],
)
def test_search_matches_percent_underscore_and_backslash_literally(
    client: TestClient, keyword: str, matching: str, not_matching: str
) -> None:
    wanted = create_recipe(client, label=matching)["id"]
    create_recipe(client, label=not_matching)
    response = client.get("/search/", params={"keyword": keyword, "max_results": 100})
    assert response.status_code == 200, response.text
    found = [(r["id"], r["label"]) for r in response.json()["results"]]
    assert found == [(wanted, matching)], f"{keyword!r} found {found}"


# --- strict input ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "1", 1.0, "one"], ids=repr)
def test_ids_in_a_body_must_be_json_integers(
    client: TestClient, recipe_id: int, value: object
) -> None:
    """`true`, `"1"` and `1.0` are not user 1: no coercion of ids."""
    created = client.post("/recipe/", json=recipe_payload(submitter_id=value))
    patched = client.patch(f"/recipe/{recipe_id}", json={"submitter_id": value})

    for response in (created, patched):
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "submitter_id"]]


def test_labels_are_stored_stripped(client: TestClient, recipe_id: int) -> None:
    created = client.post("/recipe/", json=recipe_payload(label="  Beef Stew \n"))
    patched = client.patch(f"/recipe/{recipe_id}", json={"label": "\tIrish Stew  "})

    assert created.status_code == 201, created.text
    assert created.json()["label"] == "Beef Stew"
    assert patched.json()["label"] == "Irish Stew"


@pytest.mark.parametrize("label", ["   ", "\t\n", "\u200b", "\u200b \u2060", "\u3000"], ids=repr)
def test_a_label_without_a_visible_character_is_422(
    client: TestClient, recipe_id: int, label: str
) -> None:
    created = client.post("/recipe/", json=recipe_payload(label=label))
    patched = client.patch(f"/recipe/{recipe_id}", json={"label": label})

    for response in (created, patched):
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "label"]]
    assert client.get("/recipes/").json()["results"][0]["id"] == recipe_id


def test_a_short_keyword_is_refused_in_characters(client: TestClient) -> None:
    response = client.get("/search/", params={"keyword": "ch"})

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "keyword"], error
    assert error["msg"] == "String should have at least 3 characters", error


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/recipe/4", "DELETE, GET, PATCH"),
        ("POST", "/recipe/4", "DELETE, GET, PATCH"),
        ("DELETE", "/recipe/", "POST"),
        ("PUT", "/user/3", "GET, PATCH"),
        ("DELETE", "/search/", "GET"),
    ],
)
def test_405_is_json_and_allows_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    assert response.status_code == 405, response.text
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == allowed, response.headers


def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/no-such-path")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Not Found"}


def test_413_has_the_same_json_body_with_and_without_content_length(client: TestClient) -> None:
    body = oversized_label_body(SEVERAL_MB)

    declared = client.post("/recipe/", content=body, headers={"Content-Type": "application/json"})
    chunked = client.post(
        "/recipe/",
        content=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": "application/json"},
    )

    expected = {"detail": f"Request body too large: at most {MAX_BODY_SIZE} bytes"}
    for response in (declared, chunked):
        assert response.status_code == 413, response.text[:300]
        assert response.headers["content-type"] == "application/json", response.headers
        assert response.json() == expected
