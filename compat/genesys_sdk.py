"""The official Genesys Cloud Python SDK (PureCloudPlatformClientV2) against `licensekit sandbox serve`.

Every LicenseApi operation, and the Users API listing an SDK-style `while next_uri` loop reads,
asserting values of the sandbox's demo org (see crates/licensekit-cli/src/sandbox.rs) and round
trips, not just status codes. Usage: genesys_sdk.py INFO_JSON (from `sandbox serve --write-info`).
"""

import json
import sys
import urllib.parse
import urllib.request
import ssl

import PureCloudPlatformClientV2 as pc


def user_id(i):
    # licensekit_sim::genesys::user_id
    return "%08x-0000-4000-8000-%012x" % (0x5E00000 + i, i)


def control(info, path, method="GET"):
    ctx = ssl.create_default_context(cafile=info["ca_file"]) if info["ca_file"] else None
    req = urllib.request.Request(info["control"] + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.loads(r.read())


def main():
    info = json.load(open(sys.argv[1]))
    g = info["genesys"]
    control(info, "/reset", "POST")

    pc.configuration.host = g["base_url"]
    if info["ca_file"]:
        pc.configuration.ssl_ca_cert = info["ca_file"]
    client = pc.api_client.ApiClient(g["base_url"]).get_client_credentials_token(
        g["client_id"], g["client_secret"]
    )
    licenses = pc.LicenseApi(client)
    users = pc.UsersApi(client)

    # Definitions: the catalogue, and one by id.
    ids = sorted(d.id for d in licenses.get_license_definitions())
    assert ids == ["cloudCX1", "cloudCX2", "cloudCX3", "gc2WEMupgrade"], ids
    cx3 = licenses.get_license_definition("cloudCX3")
    assert cx3.id == "cloudCX3" and "routing:queue:view" in cx3.permissions.ids, cx3
    wem = licenses.get_license_definition("gc2WEMupgrade")
    assert [p.id for p in wem.prerequisites] == ["cloudCX2"], wem.prerequisites

    # Every user's licenses, page by page (pageNumber paging: stop at pageCount).
    holders = {}
    page, seen = 1, 0
    while True:
        listing = licenses.get_license_users(page_size=100, page_number=page)
        for u in listing.entities:
            seen += 1
            for lic in u.licenses:
                holders.setdefault(lic, set()).add(u.id)
        if page >= listing.page_count:
            break
        page += 1
    # 240 agents, 3 bots, 1 license holder gone from the directory.
    assert seen == listing.total == 244, (seen, listing.total)
    assert len(holders["cloudCX3"]) == 40, len(holders["cloudCX3"])
    assert len(holders["cloudCX2"]) == 121, len(holders["cloudCX2"])
    assert len(holders["cloudCX1"]) == 3

    # One user, and a batch of users.
    one = licenses.get_license_user(user_id(1))
    assert sorted(l.id for l in one.licenses) == ["cloudCX3"], one
    batch = licenses.post_license_users(body=[user_id(0), user_id(1)])
    assert set(batch) == {user_id(0), user_id(1)}, batch

    # Batch assign and revoke, read back through the SDK.
    def change(add, remove):
        req = pc.LicenseBatchAssignmentRequest()
        a = pc.LicenseAssignmentRequest()
        a.license_id = "cloudCX3"
        a.user_ids_add = add
        a.user_ids_remove = remove
        req.assignments = [a]
        return licenses.post_license_organization(body=req)

    statuses = change([user_id(0), user_id(2)], [])
    assert {s.user_id for s in statuses} == {user_id(0), user_id(2)}, statuses
    assert all(s.license_id == "cloudCX3" for s in statuses)
    got = licenses.get_license_user(user_id(2))
    assert "cloudCX3" in [l.id for l in got.licenses], got
    change([], [user_id(0), user_id(2), user_id(1)])
    got = licenses.get_license_user(user_id(1))
    assert "cloudCX3" not in [l.id for l in got.licenses], got
    state = control(info, "/state")
    assert state["genesys"]["licenses"]["cloudCX3"] == 39, state

    # Toggles (deprecated: always enabled) and inference.
    toggle = licenses.get_license_toggle("some_feature")
    assert toggle.feature_name == "some_feature" and toggle.enabled is True, toggle
    toggle = licenses.post_license_toggle("some_feature")
    assert toggle.enabled is True
    assert licenses.post_license_infer(body=["role-supervisor"]) == ["cloudCX3"]
    perms = licenses.post_license_infer_permissions(body=["wfm:schedule:view"])
    assert "cloudCX3" in perms, perms

    # The Users API, as an SDK loop reads it: follow next_uri until there is none.
    everyone, page = [], 1
    while True:
        listing = users.get_users(page_size=50, page_number=page)
        everyone += [u for u in listing.entities]
        if not listing.next_uri:
            break
        page = int(urllib.parse.parse_qs(urllib.parse.urlparse(listing.next_uri).query)["pageNumber"][0])
    # Active: 240 agents less every 15th from 7 (16), plus 3 bots.
    assert len(everyone) == listing.total == 227, (len(everyone), listing.total)
    assert all(u.version == 1 for u in everyone)
    assert listing.previous_uri and listing.first_uri and listing.last_uri and listing.self_uri

    # An error answers with the SDK's exception, carrying the body's correlation id.
    try:
        licenses.get_license_definition("noSuchLicense")
        raise AssertionError("an unknown license must fail")
    except pc.rest.ApiException as e:
        assert e.status == 404, e.status
        body = json.loads(e.body)
        assert body["contextId"] == e.headers["ININ-Correlation-Id"], (body, e.headers)

    calls = control(info, "/calls")["genesys"]
    assert calls["POST /api/v2/license/organization"] == 2, calls
    print("genesys python sdk: ok (%d users listed, %d directory users)" % (seen, len(everyone)))


if __name__ == "__main__":
    main()
