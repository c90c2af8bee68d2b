// jsforce 3.9.5 against `licensekit sandbox serve`: SOQL on PackageLicense and UserPackageLicense
// with relationship fields and paging, COUNT(), queryAll, single and collection create/retrieve/
// destroy with allOrNone, describe — asserting the demo org's values and round trips.
// Usage: node jsforce_client.js INFO_JSON
'use strict';
const assert = require('assert');
const fs = require('fs');
const https = require('https');
const http = require('http');
const jsforce = require('jsforce');

function control(info, path, method = 'GET') {
  const url = new URL(info.control + path);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve(JSON.parse(data)));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  const info = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const s = info.salesforce;
  await control(info, '/reset', 'POST');
  const conn = new jsforce.Connection({ instanceUrl: s.instance_url, accessToken: s.session_id, version: '60.0' });

  const pkgs = await conn.query('SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses FROM PackageLicense ORDER BY NamespacePrefix');
  assert.deepStrictEqual(
    pkgs.records.map((r) => [r.NamespacePrefix, r.AllowedLicenses, r.UsedLicenses]),
    [['acme', 110, 100], ['crm_tools', 20, 20], ['sitewide', -1, 0]],
  );
  const acme = pkgs.records[0].Id;

  // Relationship fields; every user with autoFetch.
  const held = await conn.query(
    "SELECT Id, User.Email, User.Profile.Name FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'crm_tools' ORDER BY User.Email",
  );
  assert.strictEqual(held.totalSize, 20);
  assert.strictEqual(held.records[0].User.Email, 'person100@example.com');
  assert.strictEqual(held.records[0].User.Profile.Name, 'Sales User');
  const users = [];
  await new Promise((resolve, reject) => {
    conn
      .query('SELECT Id, Email, IsActive FROM User ORDER BY Email')
      .on('record', (r) => users.push(r))
      .on('end', resolve)
      .on('error', reject)
      .run({ autoFetch: true, maxFetch: 10000, headers: { 'Sforce-Query-Options': 'batchSize=200' } });
  });
  assert.strictEqual(users.length, 200);
  assert.strictEqual(users[199].Email, 'person299@example.com');

  // COUNT().
  const counted = await conn.query("SELECT COUNT() FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'acme'");
  assert.strictEqual(counted.totalSize, 100);

  // Single record: create, retrieve, describe, destroy.
  const person = users.find((u) => u.Email === 'person101@example.com');
  const upl = conn.sobject('UserPackageLicense');
  const created = await upl.create({ UserId: person.Id, PackageLicenseId: acme });
  assert.strictEqual(created.success, true);
  const got = await upl.retrieve(created.id);
  assert.strictEqual(got.UserId, person.Id);
  const described = await upl.describe();
  assert.ok(described.fields.some((f) => f.name === 'PackageLicenseId' && f.referenceTo[0] === 'PackageLicense'));
  const destroyed = await upl.destroy(created.id);
  assert.strictEqual(destroyed.success, true);

  // Collections with allOrNone: one inactive user rolls the whole create back.
  const inactive = users.find((u) => !u.IsActive);
  const results = await upl.create(
    [{ UserId: person.Id, PackageLicenseId: acme }, { UserId: inactive.Id, PackageLicenseId: acme }],
    { allOrNone: true },
  );
  assert.deepStrictEqual(results.map((r) => r.success), [false, false]);
  assert.strictEqual(results[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.strictEqual((await conn.query("SELECT COUNT() FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'acme'")).totalSize, 100);

  // Collections destroy with allOrNone: an unknown id keeps every row.
  const acmeRows = (await conn.query(`SELECT Id FROM UserPackageLicense WHERE PackageLicenseId = '${acme}'`)).records.map((r) => r.Id);
  assert.strictEqual(acmeRows.length, 100);
  const kept = await upl.destroy([acmeRows[0], '051000000009999AAA'], { allOrNone: true });
  assert.deepStrictEqual(kept.map((r) => r.success), [false, false]);
  // All 100 go; 100 other users get a seat (an anti-join finds who holds nothing), then lose it.
  assert.ok((await upl.destroy(acmeRows, { allOrNone: true })).every((r) => r.success));
  const free = (await conn.query(
    'SELECT Id FROM User WHERE IsActive = true AND Id NOT IN (SELECT UserId FROM UserPackageLicense) ORDER BY Email LIMIT 100',
  )).records;
  assert.strictEqual(free.length, 100);
  const made = await upl.create(free.map((u) => ({ UserId: u.Id, PackageLicenseId: acme })), { allOrNone: true });
  assert.ok(made.every((r) => r.success), JSON.stringify(made.slice(0, 3)));
  assert.ok((await upl.destroy(made.map((r) => r.id), { allOrNone: true })).every((r) => r.success));

  // queryAll (scanAll) sees the 201 deleted rows, paged by 200 and fetched to the end.
  const rows = [];
  await new Promise((resolve, reject) => {
    conn
      .query('SELECT Id, IsDeleted FROM UserPackageLicense')
      .on('record', (r) => rows.push(r))
      .on('end', resolve)
      .on('error', reject)
      .run({ scanAll: true, autoFetch: true, maxFetch: 10000, headers: { 'Sforce-Query-Options': 'batchSize=200' } });
  });
  assert.strictEqual(rows.length, 221);
  assert.strictEqual(rows.filter((r) => r.IsDeleted).length, 201);

  const calls = (await control(info, '/calls')).salesforce;
  assert.ok(calls['DELETE /services/data/vXX.X/composite/sobjects'] >= 1, JSON.stringify(calls));
  assert.ok(calls['GET /services/data/vXX.X/queryAll/{locator}'] >= 1 || calls['GET /services/data/vXX.X/query/{locator}'] >= 1, JSON.stringify(calls));
  console.log(`jsforce: ok (${users.length} users, ${rows.length} rows through queryAll, ${Object.values(calls).reduce((a, b) => a + b, 0)} calls)`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : JSON.stringify(e));
  process.exit(1);
});
