// The OpenID Provider of the sign-in tests: the certified `oidc-provider`,
// configured in the shape of NHS CIS2 (claims `nhsid_useruid`,
// `selected_roleid`, `nhsid_nrbac_roles`; scopes `nationalrbacaccess`,
// `associatedorgs`, `selectedrole`; no consent step), with a few CIS2-shaped
// users. It listens on a free loopback port and prints one line,
// `ISSUER <url>`, when it is ready.
//
// Environment:
//   OP_CLIENTS  JSON array of client metadata (client_id, client_secret or
//               token_endpoint_auth_method "private_key_jwt" with jwks_uri,
//               redirect_uris, post_logout_redirect_uris)
//   OP_TAMPER   makes the provider misbehave on purpose, so that the relying
//               party's checks can be tested against the real thing: its
//               token endpoint answers with an ID token that is re-signed
//               after one change — wrong-iss, wrong-aud, expired,
//               wrong-nonce, bad-signature (a key not in the JWKS).
//   OP_ID_TOKEN_TTL  seconds an ID token lives (default 3600).
//
// Log in through the development login form with a user's login below and
// any password.
//
// On Node 20 oidc-provider 9 warns "Unsupported runtime" (its policy is the
// newest LTS lines); the newest runtime APIs it calls are URL.parse and
// crypto.hash, both in Node 20 since 20.18 (package.json's engines), and the
// tests run it on 20.20. The warning goes to stderr, which the tests drop.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import { CompactSign, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

// CIS2's shape: one person (uid), each role a person_roleid at an ODS code.
const role = (id, org, code, name) => ({
  person_roleid: id,
  org_code: org,
  role_code: code,
  role_name: name,
  person_orgid: `${id}-org`,
});
const USERS = {
  // One role at the North Lincolnshire hub, which sends tasks; no record in
  // the demo region's reference data.
  'hub.clinician': {
    uid: '555021935107',
    given_name: 'Aisha',
    family_name: 'OKAFOR',
    roles: [role('555021936108', 'Y00001', 'S8000:G8000:R8000', '"Clinical":"Clinical Provision":"Clinical Practitioner Access Role"')],
  },
  // Two roles; CIS2 says which was chosen at log-in (selected_roleid).
  'two.roles': {
    uid: '555021935204',
    given_name: 'Tom',
    family_name: 'BRENNAN',
    roles: [
      role('555021936201', 'R1A14', 'S8000:G8000:R8001', '"Clinical":"Clinical Provision":"Nurse Access Role"'),
      role('555021936202', 'Y00001', 'S8000:G8000:R8000', '"Clinical":"Clinical Provision":"Clinical Practitioner Access Role"'),
    ],
    selected: '555021936202',
  },
  // A doctor at the practice that receives tasks, not in its reference data.
  'practice.gp': {
    uid: '555021935501',
    given_name: 'Priya',
    family_name: 'SHAH',
    roles: [role('555021936501', 'GPC001', 'S8000:G8000:R8000', '"Clinical":"Clinical Provision":"Clinical Practitioner Access Role"')],
  },
  'no.role': { uid: '555021935301', given_name: 'Nia', family_name: 'EVANS', roles: [] },
  // A role at an organisation no deployment of the demo region serves.
  'elsewhere': {
    uid: '555021935402',
    given_name: 'Sam',
    family_name: 'PATEL',
    roles: [role('555021936401', 'X99999', 'S8000:G8000:R8000', '"Clinical":"Clinical Provision":"Clinical Practitioner Access Role"')],
  },
};

function account(id) {
  const user = USERS[id];
  if (!user) return undefined;
  return {
    accountId: id,
    async claims() {
      const claims = {
        sub: user.uid,
        uid: user.uid,
        nhsid_useruid: user.uid,
        given_name: user.given_name,
        family_name: user.family_name,
        name: `${user.given_name} ${user.family_name}`,
        nhsid_nrbac_roles: user.roles,
        nhsid_user_orgs: user.roles.map((r) => ({ org_code: r.org_code, org_name: r.org_code })),
      };
      if (user.selected) claims.selected_roleid = user.selected;
      return claims;
    },
  };
}

function signingKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { key: privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

const signing = signingKey(randomUUID());
const clients = JSON.parse(process.env.OP_CLIENTS || '[]');
const tamper = process.env.OP_TAMPER || '';
const idTokenTtl = Number(process.env.OP_ID_TOKEN_TTL || 3600);
const SCOPES = ['openid', 'profile', 'nationalrbacaccess', 'associatedorgs', 'selectedrole'];

const configuration = {
  clients,
  jwks: { keys: [signing.jwk] },
  findAccount: (ctx, id) => account(id),
  scopes: SCOPES,
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'name', 'uid'],
    nationalrbacaccess: ['nhsid_useruid', 'nhsid_nrbac_roles'],
    associatedorgs: ['nhsid_user_orgs'],
    selectedrole: ['selected_roleid'],
  },
  // CIS2 puts the selected role in the ID token.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { IdToken: idTokenTtl },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // CIS2 asks no consent: every scope the client asks is granted.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(SCOPES.join(' '));
    grant.addOIDCClaims(['selected_roleid', 'nhsid_useruid', 'nhsid_nrbac_roles']);
    await grant.save();
    return grant;
  },
  cookies: { keys: [randomUUID()] },
  // The provider refuses to fetch from loopback addresses (SSRF protection);
  // the relying party's jwks_uri is on loopback in the tests, and only there.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

async function resign(idToken) {
  const claims = decodeJwt(idToken);
  const header = decodeProtectedHeader(idToken);
  let key = signing.key;
  const now = Math.floor(Date.now() / 1000);
  switch (tamper) {
    case 'wrong-iss': claims.iss = 'https://impostor.example/'; break;
    case 'wrong-aud': claims.aud = 'another-client'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'wrong-nonce': claims.nonce = 'not-the-nonce-sent'; break;
    case 'bad-signature': key = signingKey(header.kid).key; break;
    default: throw new Error(`unknown OP_TAMPER ${tamper}`);
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(key);
}

// Listening first names the port, and so the issuer, before the provider
// exists: nothing else can take the port in between.
const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  if (tamper) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
        ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token) };
      }
    });
  }
  // Why a request was refused, for whoever reads the provider's stderr.
  for (const event of ['grant.error', 'server_error', 'userinfo.error']) {
    provider.on(event, (ctx, err) => process.stderr.write(`${event}: ${err.message} ${err.error_description || ''} ${err.cause ? err.cause.message : ''}\n`));
  }
  server.on('request', provider.callback());
  process.stdout.write(`ISSUER ${issuer}\n`);
});
// The test that started it is gone when its end of stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
