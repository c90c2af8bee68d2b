"""simple-salesforce (the most used Python Salesforce client) against `licensekit sandbox serve`.

SOQL on PackageLicense and UserPackageLicense with relationship fields and paging, COUNT(),
queryAll, single-record create/get/describe/delete, sObject Collections create and delete with
allOrNone — asserting the demo org's values (crates/licensekit-cli/src/sandbox.rs) and round
trips. Usage: simple_salesforce_client.py INFO_JSON (from `sandbox serve --write-info`).
"""

import json
import os
import ssl
import sys
import urllib.request

from simple_salesforce import Salesforce


def control(info, path, method="GET"):
    ctx = ssl.create_default_context(cafile=info["ca_file"]) if info["ca_file"] else None
    req = urllib.request.Request(info["control"] + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.loads(r.read())


def main():
    info = json.load(open(sys.argv[1]))
    s = info["salesforce"]
    control(info, "/reset", "POST")
    if info["ca_file"]:
        # requests reads the trusted CAs from here (a session's own `verify` loses to it).
        os.environ["REQUESTS_CA_BUNDLE"] = info["ca_file"]
    sf = Salesforce(instance_url=s["instance_url"], session_id=s["session_id"])

    # Packages and their seats.
    rows = sf.query("SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses FROM PackageLicense ORDER BY NamespacePrefix")
    seats = {r["NamespacePrefix"]: (r["AllowedLicenses"], r["UsedLicenses"]) for r in rows["records"]}
    assert seats == {"acme": (110, 100), "crm_tools": (20, 20), "sitewide": (-1, 0)}, seats
    acme = next(r["Id"] for r in rows["records"] if r["NamespacePrefix"] == "acme")
    crm = next(r["Id"] for r in rows["records"] if r["NamespacePrefix"] == "crm_tools")

    # Relationship fields, two levels deep.
    held = sf.query_all(
        "SELECT Id, UserId, User.Email, User.Profile.Name, PackageLicense.NamespacePrefix "
        "FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'crm_tools' ORDER BY User.Email"
    )
    emails = [r["User"]["Email"] for r in held["records"]]
    assert emails == ["person%03d@example.com" % i for i in range(100, 120)], emails
    assert held["records"][0]["User"]["Profile"]["Name"] == "Sales User"
    assert all(r["PackageLicense"]["NamespacePrefix"] == "crm_tools" for r in held["records"])

    # COUNT(), a semi-join, LIKE and date literals.
    count = lambda q: sf.query(q)["totalSize"]
    assert count("SELECT COUNT() FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'acme'") == 100
    assert count(
        "SELECT COUNT() FROM User WHERE Id IN (SELECT UserId FROM UserPackageLicense WHERE PackageLicenseId = '%s')" % crm
    ) == 20
    assert count("SELECT COUNT() FROM User WHERE Email LIKE 'person1__@example.com'") == 100
    assert count("SELECT COUNT() FROM UserPackageLicense WHERE CreatedDate = LAST_N_DAYS:1") == 120

    # Single records: create (POST …/sobjects/UserPackageLicense/), get, describe, delete.
    user = sf.query("SELECT Id FROM User WHERE Email = 'person101@example.com'")["records"][0]["Id"]
    created = sf.UserPackageLicense.create({"UserId": user, "PackageLicenseId": acme})
    assert created["success"] is True and created["id"].startswith("051"), created
    got = sf.UserPackageLicense.get(created["id"])
    assert got["UserId"] == user and got["PackageLicenseId"] == acme, got
    described = sf.UserPackageLicense.describe()
    assert {"UserId", "PackageLicenseId"} <= {f["name"] for f in described["fields"]}
    assert described["createable"] is True
    assert sf.PackageLicense.get(acme)["UsedLicenses"] == 101
    assert sf.UserPackageLicense.delete(created["id"]) == 204
    assert sf.PackageLicense.get(acme)["UsedLicenses"] == 100

    # Collections create with allOrNone: one bad row (an inactive user) rolls back the good one.
    inactive = sf.query("SELECT Id FROM User WHERE IsActive = false LIMIT 1")["records"][0]["Id"]
    result = sf.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps({"allOrNone": True, "records": [
            {"attributes": {"type": "UserPackageLicense"}, "UserId": user, "PackageLicenseId": acme},
            {"attributes": {"type": "UserPackageLicense"}, "UserId": inactive, "PackageLicenseId": acme},
        ]}),
    )
    assert [r["success"] for r in result] == [False, False], result
    assert result[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert count("SELECT COUNT() FROM UserPackageLicense WHERE PackageLicenseId = '%s'" % acme) == 100

    # Collections delete with allOrNone: an unknown id keeps every row.
    acme_rows = [r["Id"] for r in sf.query_all(
        "SELECT Id FROM UserPackageLicense WHERE PackageLicenseId = '%s' ORDER BY Id" % acme)["records"]]
    result = sf.restful("composite/sobjects", method="DELETE",
                        params={"ids": ",".join(acme_rows[:2] + ["051000000009999AAA"]), "allOrNone": "true"})
    assert [r["success"] for r in result] == [False, False, False], result
    assert count("SELECT COUNT() FROM UserPackageLicense WHERE PackageLicenseId = '%s'" % acme) == 100
    # Without allOrNone: all 100 go.
    result = sf.restful("composite/sobjects", method="DELETE",
                        params={"ids": ",".join(acme_rows), "allOrNone": "false"})
    assert all(r["success"] for r in result) and len(result) == 100

    # Seats for 100 active users holding nothing (an anti-join), created in one collection call,
    # then taken back: 201 deleted rows in all.
    free = sf.query_all(
        "SELECT Id FROM User WHERE IsActive = true AND Id NOT IN (SELECT UserId FROM UserPackageLicense) "
        "ORDER BY Email LIMIT 100")["records"]
    assert len(free) == 100
    result = sf.restful("composite/sobjects", method="POST", data=json.dumps({"allOrNone": False, "records": [
        {"attributes": {"type": "UserPackageLicense"}, "UserId": u["Id"], "PackageLicenseId": acme} for u in free]}))
    assert all(r["success"] for r in result), result
    assert sf.PackageLicense.get(acme)["UsedLicenses"] == 100
    result = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(r["id"] for r in result)})
    assert all(r["success"] for r in result)

    # queryAll sees the deleted rows; pages of 200 are followed to the end.
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    everything = sf.query_all("SELECT Id, IsDeleted, PackageLicense.NamespacePrefix FROM UserPackageLicense", include_deleted=True)
    del sf.headers["Sforce-Query-Options"]
    assert everything["totalSize"] == 221 and len(everything["records"]) == 221, everything["totalSize"]
    assert sum(1 for r in everything["records"] if r["IsDeleted"]) == 201
    assert count("SELECT COUNT() FROM UserPackageLicense") == 20

    calls = control(info, "/calls")["salesforce"]
    assert calls.get("GET /services/data/vXX.X/queryAll/", 0) >= 1 and calls.get("GET /services/data/vXX.X/query/{locator}", 0) >= 1, calls
    print("simple-salesforce: ok (%d rows through queryAll, %d calls)" % (len(everything["records"]), sum(calls.values())))


if __name__ == "__main__":
    main()
