"""The web front end starts over the real pipeline and answers with its security headers."""

from __future__ import annotations

from tests.web.conftest import WebRig


async def test_unknown_address_is_a_short_page_with_security_headers(web_sqlite: WebRig) -> None:
    response = await web_sqlite.client.get("/no-such-page")
    assert response.status == 404
    body = await response.text()
    assert "There is nothing here" in body and "Traceback" not in body
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
