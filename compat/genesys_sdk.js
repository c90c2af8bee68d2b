// The official Genesys Cloud JS SDK (purecloud-platform-client-v2) against `licensekit sandbox serve`,
// reached with its documented setGateway (setEnvironment forces https://api.<env> without a port).
// Asserts values of the sandbox's demo org and round trips. Usage: node genesys_sdk.js INFO_JSON
'use strict';
const assert = require('assert');
const fs = require('fs');
const https = require('https');
const http = require('http');
const platformClient = require('purecloud-platform-client-v2');

const userId = (i) => (0x5e00000 + i).toString(16).padStart(8, '0') + '-0000-4000-8000-' + i.toString(16).padStart(12, '0');

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
  const g = info.genesys;
  await control(info, '/reset', 'POST');
  const base = new URL(g.base_url);
  const client = platformClient.ApiClient.instance;
  client.setGateway({
    host: base.hostname,
    protocol: base.protocol.replace(':', ''),
    port: Number(base.port),
    path_params_login: '',
    path_params_api: '',
  });
  await client.loginClientCredentialsGrant(g.client_id, g.client_secret);
  const licenses = new platformClient.LicenseApi();
  const users = new platformClient.UsersApi();

  const defs = await licenses.getLicenseDefinitions();
  assert.deepStrictEqual(defs.map((d) => d.id).sort(), ['cloudCX1', 'cloudCX2', 'cloudCX3', 'gc2WEMupgrade']);
  const cx3 = await licenses.getLicenseDefinition('cloudCX3');
  assert.ok(cx3.permissions.ids.includes('routing:queue:view'), JSON.stringify(cx3));

  // Every page of license users.
  const holders = {};
  let page = 1, seen = 0, listing;
  for (;;) {
    listing = await licenses.getLicenseUsers({ pageSize: 100, pageNumber: page });
    for (const u of listing.entities) {
      seen++;
      for (const l of u.licenses) (holders[l] = holders[l] || new Set()).add(u.id);
    }
    if (page >= listing.pageCount) break;
    page++;
  }
  assert.strictEqual(seen, 244);
  assert.strictEqual(listing.total, 244);
  assert.strictEqual(holders.cloudCX3.size, 40);

  const one = await licenses.getLicenseUser(userId(1));
  assert.deepStrictEqual(one.licenses.map((l) => l.id), ['cloudCX3']);
  const batch = await licenses.postLicenseUsers({ body: [userId(0), userId(1)] });
  assert.deepStrictEqual(Object.keys(batch).sort(), [userId(0), userId(1)].sort());

  const change = (add, remove) =>
    licenses.postLicenseOrganization({
      body: { assignments: [{ licenseId: 'cloudCX3', userIdsAdd: add, userIdsRemove: remove }] },
    });
  const statuses = await change([userId(0), userId(2)], []);
  assert.deepStrictEqual(statuses.map((s) => s.userId).sort(), [userId(0), userId(2)].sort());
  assert.ok((await licenses.getLicenseUser(userId(2))).licenses.some((l) => l.id === 'cloudCX3'));
  await change([], [userId(0), userId(2), userId(1)]);
  assert.ok(!(await licenses.getLicenseUser(userId(1))).licenses.some((l) => l.id === 'cloudCX3'));
  assert.strictEqual((await control(info, '/state')).genesys.licenses.cloudCX3, 39);

  const toggle = await licenses.getLicenseToggle('some_feature');
  assert.strictEqual(toggle.featureName, 'some_feature');
  assert.strictEqual(toggle.enabled, true);
  assert.strictEqual((await licenses.postLicenseToggle('some_feature')).enabled, true);
  assert.deepStrictEqual(await licenses.postLicenseInfer({ body: ['role-supervisor'] }), ['cloudCX3']);

  // Users API, SDK-style: follow nextUri.
  let everyone = [];
  page = 1;
  for (;;) {
    const l = await users.getUsers({ pageSize: 50, pageNumber: page });
    everyone = everyone.concat(l.entities);
    if (!l.nextUri) { listing = l; break; }
    page = Number(new URL(l.nextUri, 'https://x').searchParams.get('pageNumber'));
  }
  assert.strictEqual(everyone.length, 227);
  assert.ok(everyone.every((u) => u.version === 1));

  // Errors reject with Genesys's ErrorBody (the SDK passes the body on), its correlation id set.
  try {
    await licenses.getLicenseDefinition('noSuchLicense');
    assert.fail('an unknown license must fail');
  } catch (e) {
    assert.strictEqual(e.status, 404, JSON.stringify(e));
    assert.strictEqual(e.code, 'not.found');
    assert.match(e.contextId, /^[0-9a-f]{8}-sim0-/);
  }
  const calls = (await control(info, '/calls')).genesys;
  assert.strictEqual(calls['POST /api/v2/license/organization'], 2);
  console.log(`genesys js sdk: ok (${seen} users listed, ${everyone.length} directory users)`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : JSON.stringify(e));
  process.exit(1);
});
