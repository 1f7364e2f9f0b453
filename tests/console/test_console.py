"""The admin console in a real browser (Debian's Chromium, via Playwright)
against a real tokenmint: every page and action of SPEC §11.2, the attacks
it must withstand, keyboard use, and the narrow layout."""

import re
import time

import pytest
from playwright.sync_api import expect

from conftest import shot


def sign_in(page, pair):
    page.goto("/console")
    page.get_by_label("API key").fill(pair["api_key"])
    page.get_by_label("API secret").fill(pair["api_secret"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()


def field_value(page, label):
    """The text of a field on a key's page."""
    return page.locator("dl.fields div").filter(has=page.locator("dt", has_text=re.compile(f"^{label}$"))).locator("dd").inner_text()


def wait_for_flush(page, predicate, what):
    """Reloads the key's page until `predicate()` holds: usage and last use
    reach the database with the 5-second flush."""
    deadline = time.time() + 20
    while True:
        page.reload()
        expect(page.locator("[data-usage-summary]")).to_be_visible()
        if predicate():
            return
        assert time.time() < deadline, f"{what} did not show within 20 s"
        time.sleep(1)


def test_an_admin_creates_uses_rotates_and_revokes_a_key(watched, server):
    page = watched.page
    sign_in(page, server.admin)
    page.get_by_role("link", name="Create key").click()
    page.get_by_label("Name").fill("billing-service")
    page.get_by_label("Scopes").fill("invoices:read invoices:write")
    page.get_by_label("Environment").select_option("test")
    page.get_by_label("Expires at").fill("2031-06-30T12:00")
    page.get_by_label("Allowed IPs").fill("127.0.0.1/32, 10.0.0.0/8")
    page.get_by_label("Metadata (JSON object)").fill('{"team": "billing"}')
    page.get_by_role("button", name="Create key").click()

    secret_el = page.locator("[data-secret]")
    expect(secret_el).to_be_visible()
    expect(page.get_by_text("shown once")).to_be_visible()
    secret = secret_el.inner_text().strip()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    api_key = field_value(page, "API key")
    assert api_key.startswith("tm_test_")
    assert field_value(page, "Environment") == "test"
    assert field_value(page, "Allowed IPs") == "127.0.0.1/32, 10.0.0.0/8"
    assert "2031" in field_value(page, "Expires at")
    # Entered in the browser's zone (New York, see conftest): 12:00 EDT.
    key_id = page.url.rsplit("/", 1)[1]
    stored = server.call("GET", f"/v1/api-keys/{key_id}", token=server.admin_token)[1]
    assert stored["expires_at"] == "2031-06-30T16:00:00Z", stored["expires_at"]
    assert '"team": "billing"' in field_value(page, "Metadata")
    key_url = page.url
    assert re.search(r"/console/keys/[0-9a-f-]{36}$", key_url)
    assert secret not in key_url

    status, body = server.exchange(api_key, secret)
    assert status == 200, body
    assert body["scope"] == "invoices:read invoices:write"

    # The secret is gone for good: not after a reload, not in any storage.
    page.reload()
    expect(page.get_by_role("heading", name="billing-service")).to_be_visible()
    expect(page.locator("[data-secret]")).to_have_count(0)
    assert secret not in page.content()
    storage = page.evaluate("JSON.stringify([sessionStorage, localStorage, Object.entries(sessionStorage)])")
    assert secret not in storage
    assert page.evaluate("localStorage.length") == 0

    wait_for_flush(
        page,
        lambda: field_value(page, "Last used at") != "never"
        and page.locator("[data-usage-summary]").inner_text().startswith("1 issued"),
        "the exchange's last use and usage",
    )
    # 24 hours back from now, moved to the start of that hour: 25 buckets.
    assert page.locator(".chart rect.issued").count() == 25

    # Edit.
    page.get_by_text("Edit", exact=True).click()
    page.get_by_label("Rate limit per minute").fill("120")
    page.get_by_label("Allowed IPs").fill("")
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        page.get_by_role("button", name="Save").click()
    # Only what changed is sent; a cleared list is sent empty.
    assert patch.value.post_data_json == {"rate_limit_per_minute": 120, "allowed_ips": []}
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert field_value(page, "Rate limit per minute") == "120"
    assert field_value(page, "Allowed IPs") == "any"

    # Rotate with a grace period: both secrets work.
    page.get_by_label(re.compile("grace", re.I)).fill("3600")
    page.get_by_role("button", name="Rotate").click()
    expect(page.locator("[data-secret]")).to_be_visible()
    new_secret = page.locator("[data-secret]").inner_text().strip()
    assert new_secret != secret
    expect(page.get_by_text("keeps working until")).to_be_visible()
    assert server.exchange(api_key, secret)[0] == 200
    assert server.exchange(api_key, new_secret)[0] == 200
    wait_for_flush(
        page,
        lambda: page.locator("[data-usage-summary]").inner_text().startswith("3 issued"),
        "three exchanges",
    )
    shot(page, "console-key.png")

    # Revoke, after confirming.
    page.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").filter(has_text="Revoked.")).to_be_visible()
    assert field_value(page, "Status") == "revoked"
    expect(page.get_by_role("button", name="Rotate")).to_have_count(0)
    assert server.exchange(api_key, new_secret)[0] == 401

    actions = page.locator("[data-action]").all_inner_texts()
    for action in ["api_key.created", "api_key.updated", "api_key.rotated", "api_key.revoked"]:
        assert action in actions, actions

    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("link", name="billing-service")).to_be_visible()
    shot(page, "console-keys.png")


def test_a_revoke_can_be_called_off(watched, server):
    page = watched.page
    status, key = server.call("POST", "/v1/api-keys", {"name": "keep-me"}, server.admin_token)
    assert status == 201
    sign_in(page, server.admin)
    page.goto(f"/console/keys/{key['id']}")
    page.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert server.call("GET", f"/v1/api-keys/{key['id']}", token=server.admin_token)[1]["status"] == "active"


def test_the_list_filters_by_status_environment_and_name_and_pages(watched, server):
    page = watched.page
    for i in range(27):
        assert server.call("POST", "/v1/api-keys", {"name": f"pager-{i:02}", "environment": "test"}, server.admin_token)[0] == 201
    status, gone = server.call("POST", "/v1/api-keys", {"name": "pager-revoked"}, server.admin_token)
    server.call("DELETE", f"/v1/api-keys/{gone['id']}", token=server.admin_token)
    sign_in(page, server.admin)
    page.get_by_label("Name contains").fill("PAGER-")
    page.get_by_label("Environment").select_option("test")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.keys tbody tr")
    expect(rows).to_have_count(25)
    assert "environment=test" in page.url and "name=PAGER-" in page.url
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(25)
    page.get_by_label("Status").select_option("revoked")
    page.get_by_label("Environment").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_role("link", name="pager-revoked")).to_be_visible()


def test_a_read_only_key_sees_no_write_control_and_its_forged_writes_are_refused(watched, server):
    page = watched.page
    status, key = server.call("POST", "/v1/api-keys", {"name": "look-dont-touch"}, server.admin_token)
    sign_in(page, server.reader)
    expect(page.get_by_text("read-only")).to_be_visible()
    expect(page.get_by_role("link", name="Create key")).to_have_count(0)
    page.get_by_role("link", name="look-dont-touch").click()
    expect(page.get_by_role("heading", name="look-dont-touch")).to_be_visible()
    expect(page.locator("[data-usage-summary]")).to_be_visible()
    for name in ["Save", "Rotate", "Revoke", "Create key"]:
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    # The page offers no writes; the API refuses them anyway. Chromium logs
    # each refused fetch as a console error, which is the point here.
    watched.allow("status of 403")
    statuses = page.evaluate(
        """async (id) => {
            const token = JSON.parse(sessionStorage.getItem("tokenmint.console.session")).token;
            const h = {authorization: `Bearer ${token}`, "content-type": "application/json"};
            const call = (method, path, body) => fetch(path, {method, headers: h, body: body && JSON.stringify(body)}).then(r => r.status);
            return [
              await call("POST", "/v1/api-keys", {name: "forged"}),
              await call("PATCH", `/v1/api-keys/${id}`, {name: "forged"}),
              await call("POST", `/v1/api-keys/${id}/rotate`, {}),
              await call("DELETE", `/v1/api-keys/${id}`),
            ];
        }""",
        key["id"],
    )
    assert statuses == [403, 403, 403, 403]
    after = server.call("GET", f"/v1/api-keys/{key['id']}", token=server.admin_token)[1]
    assert (after["name"], after["status"]) == ("look-dont-touch", "active")
    page.goto("/console/new")
    expect(page.get_by_text("read-only: it cannot create keys")).to_be_visible()


def test_hostile_names_and_metadata_render_as_text(watched, server):
    page = watched.page
    name = "<img src=x onerror=alert(1)>"
    meta = {"note": "</script><script>alert(2)</script>", "html": "<b onmouseover=alert(3)>x</b>"}
    claims = {"x": "<svg onload=alert(4)>"}
    status, key = server.call("POST", "/v1/api-keys", {"name": name, "metadata": meta, "claims": claims}, server.admin_token)
    assert status == 201, key
    sign_in(page, server.admin)
    page.get_by_label("Name contains").fill("<img")
    page.get_by_role("button", name="Filter").click()
    link = page.get_by_role("link", name=name)
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert meta["note"] in field_value(page, "Metadata")
    assert claims["x"] in field_value(page, "Claims")
    page.get_by_text("Edit", exact=True).click()
    assert page.get_by_label("Name").input_value() == name
    main = page.locator("main")
    assert main.locator("img, b, svg:not(.chart), script").count() == 0
    # Dialogs would have been recorded by the fixture, which fails the test.


def test_the_csp_blocks_an_injected_inline_script(watched, server):
    page = watched.page
    sign_in(page, server.admin)
    watched.allow("Content Security Policy")
    watched.allow("TrustedScript")
    watched.allow("TrustedHTML")
    inject = """(how) => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) =>
          setTimeout(() => resolve({directive: e.effectiveDirective, ran: window.__injected === 1}), 200), {once: true});
        try {
          if (how === "html") {
            document.body.insertAdjacentHTML("beforeend", "<img src=x onerror='window.__injected = 1'>");
          } else if (how === "attr") {
            const img = document.createElement("img");
            img.setAttribute("onerror", "window.__injected = 1");
            img.src = "/console/assets/missing.png";
            document.body.append(img);
          } else {
            const s = document.createElement("script");
            if (how === "text") s.textContent = "window.__injected = 1";
            else s.append(document.createTextNode("window.__injected = 1"));
            document.body.append(s);
          }
        } catch (e) { /* Trusted Types throws; the violation event says why */ }
        setTimeout(() => resolve({directive: null, ran: window.__injected === 1}), 2000);
    })"""
    for how in ["text", "node", "html", "attr"]:
        result = page.evaluate(inject, how)
        # Trusted Types stops a string from becoming script or HTML at all;
        # script-src would stop what got through. Either way: it never runs.
        assert result["directive"] in ("require-trusted-types-for", "script-src-elem", "script-src-attr"), (how, result)
        assert result["ran"] is False, how
    watched.allow("404")


def test_a_key_is_created_with_the_keyboard_alone(watched, server):
    page = watched.page
    page.goto("/console")
    # Focus starts in the API key field.
    page.keyboard.type(server.admin["api_key"])
    page.keyboard.press("Tab")
    page.keyboard.type(server.admin["api_secret"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Create key":
            break
    else:
        pytest.fail("Tab never reached Create key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Create key")).to_be_visible()
    page.keyboard.type("typed-by-keyboard")  # the name field has focus
    page.keyboard.press("Tab")
    page.keyboard.type("reports:read")
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("[data-secret]")).to_be_visible()
    expect(page.get_by_role("heading", name="typed-by-keyboard")).to_be_visible()
    assert field_value(page, "Scopes") == "reports:read"
    page.keyboard.press("Tab")  # from the secret (focused) to its Copy button
    assert page.evaluate("document.activeElement.textContent") == "Copy"
    page.keyboard.press("Enter")
    expect(page.get_by_text("Copied.")).to_be_visible()


def test_sign_out_and_a_wrong_secret(watched, server):
    page = watched.page
    page.goto("/console")
    page.get_by_label("API key").fill(server.admin["api_key"])
    page.get_by_label("API secret").fill(server.admin["api_secret"][:-1] + "x")
    watched.allow("status of 4")  # the refused exchange
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    assert page.evaluate("sessionStorage.length") == 0
    sign_in(page, server.admin)
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0
    assert "token" not in page.url and "secret" not in page.url
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


@pytest.mark.parametrize("watched", [{"width": 390, "height": 844}], indirect=True)
def test_every_page_fits_390_pixels(watched, server):
    page = watched.page
    status, key = server.call(
        "POST",
        "/v1/api-keys",
        {"name": "a-rather-long-name-for-a-narrow-screen-" + "x" * 40, "scopes": ["orders:read"], "metadata": {"k": "v" * 200}},
        server.admin_token,
    )
    sign_in(page, server.admin)
    expect(page.locator("table.keys tbody tr").first).to_be_visible()

    def fits(where):
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1] == 390, f"{where}: scrollWidth {width[0]} > {width[1]}"

    fits("keys list")
    page.goto(f"/console/keys/{key['id']}")
    expect(page.locator("[data-usage-summary]")).to_be_visible()
    expect(page.get_by_text("No events.").or_(page.locator("table.audit"))).to_be_visible()
    page.get_by_text("Edit", exact=True).click()
    fits("key page")
    page.goto("/console/new")
    expect(page.get_by_role("button", name="Create key")).to_be_visible()
    fits("create page")


def test_invalid_input_is_explained_field_by_field(watched, server):
    page = watched.page
    sign_in(page, server.admin)
    page.goto("/console/new")
    page.get_by_label("Name").fill("will-not-exist")
    # Checked in the page: not JSON.
    page.get_by_label("Claims (JSON object)").fill("{not json")
    page.get_by_role("button", name="Create key").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("claims: must be a JSON object")
    # Checked by the API: its 422 names the field.
    page.get_by_label("Claims (JSON object)").fill("")
    page.get_by_label("Allowed IPs").fill("not-an-address")
    watched.allow("status of 422")
    page.get_by_role("button", name="Create key").click()
    expect(alert).to_contain_text("allowed_ips")
    expect(page.get_by_role("button", name="Create key")).to_be_enabled()
    status, listed = server.call("GET", "/v1/api-keys?name=will-not-exist", token=server.admin_token)
    assert listed["data"] == []


def test_the_session_ends_when_the_token_expires(watched, server):
    page = watched.page
    sign_in(page, server.admin)
    # As if the token had one second left: the page signs itself out then.
    page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem("tokenmint.console.session"));
        s.expiresAt = Date.now() + 1000;
        sessionStorage.setItem("tokenmint.console.session", JSON.stringify(s));
    }""")
    page.reload()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_text("Your session expired")).to_be_visible(timeout=5000)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_revoking_the_signed_in_key_ends_the_session_cleanly(watched, server):
    page = watched.page
    pair = server.cli("api-key", "create", "--name", "self-revoker", "--scope", "tokenmint:admin")
    sign_in(page, pair)
    page.goto(f"/console/keys/{pair['id']}")
    page.get_by_role("button", name="Revoke").click()
    watched.allow("status of 401")  # the page's reload of the key, refused
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("no longer valid")).to_be_visible()
    page.wait_for_timeout(500)  # nothing late may draw over the sign-in form
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("could not be loaded")).to_have_count(0)


def test_a_key_created_to_require_dpop_refuses_bare_exchanges(watched, server):
    page = watched.page
    sign_in(page, server.admin)
    page.goto("/console/new")
    page.get_by_label("Name").fill("dpop-only")
    page.get_by_label("Require DPoP").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("[data-secret]")).to_be_visible()
    secret = page.locator("[data-secret]").inner_text().strip()
    assert field_value(page, "Require DPoP") == "yes"
    status, body = server.exchange(field_value(page, "API key"), secret)
    assert (status, body.get("error")) == (400, "invalid_dpop_proof"), body
    # Unticked and saved: only that field is sent, and bare exchanges work.
    page.get_by_text("Edit", exact=True).click()
    page.get_by_label("Require DPoP").uncheck()
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        page.get_by_role("button", name="Save").click()
    assert patch.value.post_data_json == {"require_dpop": False}
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert field_value(page, "Require DPoP") == "no"
    assert server.exchange(field_value(page, "API key"), secret)[0] == 200
